"""Client API keys and what they may see, over a real PostgreSQL.

The admin token manages everything. A client key sees its own client only:
another client's objects answer 404 exactly like objects nobody has, and
what only the admin may do is 403 for every client key. Each endpoint that
takes a client or object id is tried with another client's key.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from switchboard.auth import KeyResolver, Principal
from tests.router.actions import (
    AUTH,
    LiveRouter,
    assign_number,
    audit_entries,
    bearer,
    create_client,
    issue_key,
)

A_NUMBER = "+14155550100"
B_NUMBER = "+14155550200"
PHONE = "+14155559999"


def two_clients(http: FlaskClient) -> dict[str, Any]:
    a = create_client(http, name="A", forwardTo=PHONE)
    b = create_client(http, name="B", forwardTo=PHONE)
    assign_number(http, a["id"], phoneNumber=A_NUMBER)
    assign_number(http, b["id"], phoneNumber=B_NUMBER)
    a_key = issue_key(http, a["id"], name="dashboard")
    b_key = issue_key(http, b["id"])
    return {"a": a, "b": b, "a_key": a_key, "b_key": b_key}


def test_issued_key_is_shown_once_and_stored_only_as_a_hash(http: FlaskClient, pg_url: str) -> None:
    client = create_client(http)
    issued = issue_key(http, client["id"], name="reporting")

    assert issued["key"].startswith("sbk_")
    assert issued["clientId"] == client["id"] and issued["name"] == "reporting"
    listed = http.get(f"/api/clients/{client['id']}/api-keys", headers=AUTH).get_json()["keys"]
    assert listed == [{k: v for k, v in issued.items() if k != "key"}]
    with psycopg.connect(pg_url) as conn:
        dump = " ".join(
            str(row)
            for table in ("api_keys", "audit_log", "event_outbox")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()
        )
    assert issued["key"] not in dump
    assert issued["key"][4:20] not in dump


def test_client_key_sees_only_its_own_client(http: FlaskClient) -> None:
    world = two_clients(http)
    key = bearer(world["a_key"]["key"])

    listed = http.get("/api/clients", headers=key).get_json()["clients"]
    assert [c["id"] for c in listed] == [world["a"]["id"]]
    assert http.get(f"/api/clients/{world['a']['id']}", headers=key).status_code == 200
    numbers = http.get(f"/api/clients/{world['a']['id']}/numbers", headers=key).get_json()
    assert [n["phoneNumber"] for n in numbers["numbers"]] == [A_NUMBER]


def scoped_requests(world: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Requests a client key may make for its own client, aimed at client B."""
    b = world["b"]["id"]
    return [
        ("GET", f"/api/clients/{b}", None),
        ("PATCH", f"/api/clients/{b}", {"name": "pwned"}),
        ("PUT", f"/api/clients/{b}", {"name": "pwned"}),
        ("GET", f"/api/clients/{b}/numbers", None),
        ("GET", f"/api/clients/{b}/numbers/{B_NUMBER}", None),
        ("PATCH", f"/api/clients/{b}/numbers/{B_NUMBER}", {"campaign": "pwned"}),
        (
            "POST",
            "/api/twilio/make-call",
            {"fromNumber": B_NUMBER, "toNumber": PHONE, "clientId": b, "message": "hi"},
        ),
    ]


def admin_requests(world: dict[str, Any], client_id: str) -> list[tuple[str, str, Any]]:
    """Requests only the admin may make, about `client_id`."""
    kid = world["b_key"]["keyId"]
    return [
        ("POST", "/api/clients", {"name": "New"}),
        ("DELETE", f"/api/clients/{client_id}", None),
        ("POST", f"/api/clients/{client_id}/numbers", {"phoneNumber": "+14155550300"}),
        ("DELETE", f"/api/clients/{client_id}/numbers/{B_NUMBER}", None),
        ("GET", f"/api/clients/{client_id}/api-keys", None),
        ("POST", f"/api/clients/{client_id}/api-keys", {}),
        ("DELETE", f"/api/clients/{client_id}/api-keys/{kid}", None),
        ("GET", "/api/audit", None),
        ("GET", "/api/twilio/numbers", None),
        ("GET", "/api/twilio/purchase-number?areaCode=415", None),
        ("POST", "/api/twilio/purchase-number", {"areaCode": "415"}),
    ]


def test_another_clients_objects_are_404_like_objects_nobody_has(http: FlaskClient) -> None:
    world = two_clients(http)
    key = bearer(world["a_key"]["key"])
    before = http.get(f"/api/clients/{world['b']['id']}", headers=AUTH).get_json()

    for method, path, body in scoped_requests(world):
        theirs = http.open(path, method=method, json=body, headers=key)
        nobodys = http.open(
            path.replace(world["b"]["id"], str(uuid.uuid4())), method=method, json=body, headers=key
        )
        assert theirs.status_code == 404, (method, path, theirs.get_json())
        assert nobodys.status_code == 404, (method, path)
        assert theirs.get_json()["error"]["code"] == nobodys.get_json()["error"]["code"]

    assert http.get(f"/api/clients/{world['b']['id']}", headers=AUTH).get_json() == before
    b_numbers = http.get(f"/api/clients/{world['b']['id']}/numbers", headers=AUTH).get_json()
    assert b_numbers["numbers"][0]["campaign"] is None


def test_own_number_cannot_be_used_to_reach_another_clients_number(http: FlaskClient) -> None:
    world = two_clients(http)
    key = bearer(world["a_key"]["key"])
    a = world["a"]["id"]
    assert http.get(f"/api/clients/{a}/numbers/{B_NUMBER}", headers=key).status_code == 404
    assert (
        http.patch(
            f"/api/clients/{a}/numbers/{B_NUMBER}", json={"campaign": "x"}, headers=key
        ).status_code
        == 404
    )
    response = http.post(
        "/api/twilio/make-call",
        headers=key,
        json={"fromNumber": B_NUMBER, "toNumber": PHONE, "clientId": a, "message": "hi"},
    )
    assert response.status_code == 404


@pytest.mark.parametrize("whose", ["own", "other"])
def test_admin_only_actions_are_403_for_any_client_key(http: FlaskClient, whose: str) -> None:
    world = two_clients(http)
    key = bearer(world["a_key"]["key"])
    target = world["a"]["id"] if whose == "own" else world["b"]["id"]
    audit_before = len(audit_entries(http))

    for method, path, body in admin_requests(world, target):
        response = http.open(path, method=method, json=body, headers=key)
        assert response.status_code == 403, (method, path, response.get_json())
        assert response.get_json()["error"]["code"] == "forbidden"

    assert len(audit_entries(http)) == audit_before
    assert len(http.get("/api/clients", headers=AUTH).get_json()["clients"]) == 2


def test_client_key_may_change_its_own_settings_and_is_named_in_the_audit(
    http: FlaskClient,
) -> None:
    world = two_clients(http)
    a, kid = world["a"]["id"], world["a_key"]["keyId"]
    key = bearer(world["a_key"]["key"])

    assert (
        http.patch(f"/api/clients/{a}", json={"retentionDays": 7}, headers=key).status_code == 200
    )
    assert (
        http.patch(
            f"/api/clients/{a}/numbers/{A_NUMBER}", json={"campaign": "tv"}, headers=key
        ).status_code
        == 200
    )

    entries = audit_entries(http, actor=f"client:{a}:key:{kid}")
    assert [(e["action"], e["targetId"]) for e in entries] == [
        ("number.updated", A_NUMBER),
        ("client.updated", a),
    ]


def test_revoked_key_stops_working_at_once(http: FlaskClient) -> None:
    world = two_clients(http)
    a, kid = world["a"]["id"], world["a_key"]["keyId"]
    key = bearer(world["a_key"]["key"])

    assert http.delete(f"/api/clients/{a}/api-keys/{kid}", headers=AUTH).status_code == 204

    assert http.get("/api/clients", headers=key).status_code == 403
    assert http.delete(f"/api/clients/{a}/api-keys/{kid}", headers=AUTH).status_code == 404
    [listed] = http.get(f"/api/clients/{a}/api-keys", headers=AUTH).get_json()["keys"]
    assert listed["revokedAt"] is not None
    assert http.get("/api/clients", headers=bearer(world["b_key"]["key"])).status_code == 200


def test_key_of_one_client_cannot_be_revoked_through_another(http: FlaskClient) -> None:
    world = two_clients(http)
    kid = world["b_key"]["keyId"]
    response = http.delete(f"/api/clients/{world['a']['id']}/api-keys/{kid}", headers=AUTH)
    assert response.status_code == 404
    assert http.get("/api/clients", headers=bearer(world["b_key"]["key"])).status_code == 200


def test_introspection_names_the_client_of_a_live_key(http: FlaskClient) -> None:
    world = two_clients(http)
    answer = http.post("/internal/keys/introspect", json={"key": world["a_key"]["key"]})
    assert answer.status_code == 200
    assert answer.get_json() == {"clientId": world["a"]["id"], "keyId": world["a_key"]["keyId"]}
    for key in ("sbk_nobody", "test-admin-token", world["a_key"]["key"] + "x"):
        assert http.post("/internal/keys/introspect", json={"key": key}).status_code == 404
    for body in ({}, {"key": 5}, {"key": ""}):
        assert http.post("/internal/keys/introspect", json=body).status_code == 400


def test_other_services_resolve_keys_through_the_shared_resolver(
    live_router: LiveRouter,
) -> None:
    http = live_router.app.test_client()
    client = create_client(http)
    issued = issue_key(http, client["id"])
    resolver = KeyResolver(live_router.url, ttl=0)

    assert resolver(issued["key"]) == Principal("client", client["id"], issued["keyId"])
    assert resolver("sbk_unknown") is None
    http.delete(f"/api/clients/{client['id']}/api-keys/{issued['keyId']}", headers=AUTH)
    assert resolver(issued["key"]) is None
