"""GET /api/audit over a real PostgreSQL: every mutation leaves one entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from tests.router.actions import (
    AUTH,
    assign_number,
    audit_entries,
    create_client,
    issue_key,
)

PHONE = "+14155559999"
NUMBER = "+14155550100"


def test_every_mutation_is_audited_newest_first_with_who_what_and_target(
    http: FlaskClient,
) -> None:
    client = create_client(http, forwardTo=PHONE)
    cid = client["id"]
    assign_number(http, cid, phoneNumber=NUMBER)
    http.patch(f"/api/clients/{cid}/numbers/{NUMBER}", json={"campaign": "tv"}, headers=AUTH)
    key = issue_key(http, cid)
    http.delete(f"/api/clients/{cid}/api-keys/{key['keyId']}", headers=AUTH)
    http.patch(f"/api/clients/{cid}", json={"retentionDays": 14}, headers=AUTH)
    http.delete(f"/api/clients/{cid}/numbers/{NUMBER}", headers=AUTH)
    http.delete(f"/api/clients/{cid}", headers=AUTH)

    entries = audit_entries(http)

    assert [(e["action"], e["targetType"], e["targetId"]) for e in entries] == [
        ("client.deleted", "client", cid),
        ("number.released", "number", NUMBER),
        ("client.updated", "client", cid),
        ("api-key.revoked", "api-key", key["keyId"]),
        ("api-key.issued", "api-key", key["keyId"]),
        ("number.updated", "number", NUMBER),
        ("number.assigned", "number", NUMBER),
        ("client.created", "client", cid),
    ]
    assert {e["actor"] for e in entries} == {"admin"}
    assert {e["clientId"] for e in entries} == {cid}
    assert entries[2]["details"]["changed"] == ["retentionDays"]
    assert entries[6]["details"]["number"]["forwardTo"] == PHONE
    now = datetime.now(UTC)
    for entry in entries:
        at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        assert now - timedelta(minutes=1) < at <= now


def test_reads_and_refused_changes_leave_no_entry(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber=NUMBER)
    before = audit_entries(http)

    http.get("/api/clients", headers=AUTH)
    http.get(f"/api/clients/{client['id']}/numbers", headers=AUTH)
    http.post(f"/api/clients/{client['id']}/numbers", json={"phoneNumber": NUMBER}, headers=AUTH)
    http.patch(f"/api/clients/{client['id']}", json={"timezone": "Mars/Base"}, headers=AUTH)

    assert audit_entries(http) == before


def test_audit_filters_and_pages(http: FlaskClient) -> None:
    first = create_client(http, name="First", forwardTo=PHONE)
    second = create_client(http, name="Second", forwardTo=PHONE)
    for n in range(3):
        assign_number(http, second["id"], phoneNumber=f"+1415555010{n}")

    mine = audit_entries(http, clientId=first["id"])
    assert [e["action"] for e in mine] == ["client.created"]
    assigned = audit_entries(http, action="number.assigned", targetType="number")
    assert [e["targetId"] for e in assigned] == [f"+1415555010{n}" for n in (2, 1, 0)]

    page = http.get("/api/audit", query_string={"limit": 2}, headers=AUTH).get_json()
    assert len(page["entries"]) == 2 and page["nextBefore"] == page["entries"][-1]["id"]
    rest = http.get(
        "/api/audit", query_string={"limit": 2, "before": page["nextBefore"]}, headers=AUTH
    ).get_json()
    assert [e["id"] for e in rest["entries"]] == [page["nextBefore"] - 1, page["nextBefore"] - 2]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit_entries(http, since=future) == []


def test_bad_audit_filter_is_a_400(http: FlaskClient) -> None:
    for query in ({"limit": "0"}, {"clientId": "x"}, {"since": "soon"}, {"who": "me"}):
        response = http.get("/api/audit", query_string=query, headers=AUTH)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_query"
