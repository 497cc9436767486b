"""Router's part of a caller's erasure and export: the request recorded under the token,
audited, announced twice on the compacted topic; refused for anyone but the admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from flask.testing import FlaskClient

from switchboard.events import validate
from switchboard.kafka import Topics
from switchboard.privacy import DEV_TOKEN_SECRET, caller_token
from tests.kafka_read import read_topic
from tests.router.actions import AUTH, AppFactory, audit_entries, bearer, create_client, issue_key
from tests.support import free_port

CALLER = "+12125550147"
TOKEN = caller_token(DEV_TOKEN_SECRET, CALLER)


def unreachable() -> str:
    return f"http://127.0.0.1:{free_port()}"


def erasures(pg_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT token, requested_by FROM caller_erasures").fetchall()
    return [(row[0], row[1]) for row in rows]


def test_erasure_is_the_admins_and_needs_an_e164_number_and_records_nothing_otherwise(
    http: FlaskClient, pg_url: str
) -> None:
    client = create_client(http)
    key = issue_key(http, client["id"])["key"]
    path = f"/api/privacy/callers/{CALLER}"

    assert http.delete(path).status_code == 401
    refused = http.delete(path, headers=bearer(key))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert http.get(path, headers=bearer(key)).status_code == 403
    bad = http.delete("/api/privacy/callers/2125550147", headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_number"
    assert erasures(pg_url) == []
    assert audit_entries(http, targetType="caller") == []


def test_erasure_is_recorded_audited_and_announced_even_while_other_services_are_down(
    make_app: AppFactory, pg_url: str, kafka_bootstrap: str, topics: Topics
) -> None:
    http = make_app(ingress_url=unreachable(), recordings_url=unreachable()).test_client()

    reply = http.delete(f"/api/privacy/callers/{CALLER}", headers=AUTH)

    assert reply.status_code == 202
    body = reply.get_json()
    assert body["complete"] is False and body["failed"] == ["ingressSpool", "recordings"]
    assert body["token"] == TOKEN
    statuses = {name: store["status"] for name, store in body["stores"].items()}
    assert statuses == {
        "router": "done",
        "ingressSpool": "failed",
        "recordings": "failed",
        "analytics": "pending",
        "reporting": "pending",
    }
    assert erasures(pg_url) == [(TOKEN, "admin")]
    entries = audit_entries(http, targetId=TOKEN)
    assert [e["action"] for e in entries] == ["caller.erased", "caller.erasure-requested"]
    assert CALLER not in str(entries)

    announced = read_topic(kafka_bootstrap, topics.client_events, expect=2)
    assert [m["key"] for m in announced] == [f"caller:{TOKEN}"] * 2
    first, second = (m["value"] for m in announced)
    for event in (first, second):
        validate(event)
        assert event["type"] == "caller.erased" and event["data"]["token"] == TOKEN
    assert first["data"]["number"] == CALLER
    assert second["data"]["number"] is None  # what compaction keeps


def test_an_export_says_it_is_incomplete_when_a_service_cannot_be_asked(
    make_app: AppFactory,
) -> None:
    http = make_app(
        analytics_url=unreachable(), recordings_url=unreachable(), reporting_url=unreachable()
    ).test_client()
    reply = http.get(f"/api/privacy/callers/{CALLER}", headers=AUTH)
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["complete"] is False
    assert set(body["unavailable"]) == {"analytics", "recordings", "reporting"}
    assert body["unavailable"]["reporting"].startswith("unreachable")
    held = ("calls", "recordings", "alerts", "texts", "optOuts", "reports")
    assert {key: body[key] for key in held} == dict.fromkeys(held, [])
    assert "notes" not in body
    [entry] = audit_entries(http, action="caller.exported")
    assert entry["targetId"] == TOKEN
    assert entry["details"]["missing"].keys() == body["unavailable"].keys()


def test_deleting_a_client_answers_and_announces_when_its_data_is_purged(
    make_app: AppFactory, kafka_bootstrap: str, topics: Topics
) -> None:
    http = make_app(purge_grace_days=30).test_client()
    client = create_client(http)
    before = datetime.now(UTC)

    reply = http.delete(f"/api/clients/{client['id']}", headers=AUTH)

    assert reply.status_code == 200
    purge_after = datetime.fromisoformat(reply.get_json()["purgeAfter"].replace("Z", "+00:00"))
    assert abs(purge_after - (before + timedelta(days=30))) < timedelta(seconds=5)
    [entry] = audit_entries(http, action="client.deleted")
    assert entry["details"]["purgeAfter"] == reply.get_json()["purgeAfter"]
    found = read_topic(kafka_bootstrap, topics.client_events, expect=2)
    deleted = [m["value"] for m in found if m["value"]["data"]["deleted"]]
    assert [event["data"]["purgeAfter"] for event in deleted] == [reply.get_json()["purgeAfter"]]
    validate(deleted[0])
