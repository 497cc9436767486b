"""A caller's export and erasure through the edge, across every store, with calls played by
the Twilio simulator: afterwards the number is nowhere, the client's counts are unchanged,
and reading the call events again does not bring it back.

The module's system runs reporting too (the shared e2e system does not): the export
lists the alerts reporting keeps, and the erasure reaches them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql

from switchboard.events import Event
from switchboard.kafka import EventProducer
from tests.analytics.topic_state import committed_total, end_total
from tests.e2e.conftest import ADMIN, SERVICES, System, number, running_system
from tests.e2e.test_simulated_calls import own, play
from tests.kafka_read import read_topic
from tests.support import wait_until


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """tests/e2e/conftest.py's system, with reporting (on the same PostgreSQL database)."""
    with running_system(
        tmp_path_factory.mktemp("e2e-privacy"),
        kafka_bootstrap,
        postgres_url,
        (*SERVICES, "reporting"),
        # A missed call is alerted at once, without waiting for a voicemail.
        {"REPORTING_VOICEMAIL_WAIT_SECONDS": "0"},
    ) as made:
        yield made


def analytics_holding(system: System, text: str) -> dict[str, int]:
    """Rows per table and MV target of the analytics database that hold `text`."""
    reply = requests.get(
        f"{system.services['analytics'].url}/internal/privacy/search",
        params={"text": text},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return {table: n for table, n in reply.json()["tables"].items() if n}


def postgres_holding(system: System, text: str) -> dict[str, int]:
    """Rows per table of router's, recordings' and reporting's database (every schema) that
    hold `text`."""
    found = {}
    with psycopg.connect(system.env["DATABASE_URL"], autocommit=True) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            " USING (table_schema, table_name)"
            " WHERE t.table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        tables: dict[tuple[str, str], list[sql.Composable]] = {}
        for schema, table, column, kind in columns:
            field = sql.Identifier(column)
            if kind == "bytea":
                condition = sql.SQL("position(convert_to({}, 'UTF8') in {}) > 0").format(
                    sql.Literal(text), field
                )
            else:
                condition = sql.SQL("strpos({}::text, {}) > 0").format(field, sql.Literal(text))
            tables.setdefault((schema, table), []).append(condition)
        for (schema, table), conditions in tables.items():
            query = sql.SQL("SELECT count(*) FROM {}.{} WHERE {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.SQL(" OR ").join(conditions)
            )
            row = conn.execute(query).fetchone()
            if row and row[0]:
                found[f"{schema}.{table}"] = int(row[0])
    return found


def files_holding(folder: Path, text: str) -> list[str]:
    if not folder.exists():
        return []
    return [str(p) for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def everywhere(system: System, text: str) -> dict[str, Any]:
    held: dict[str, Any] = {
        "clickhouse": analytics_holding(system, text),
        "postgres": postgres_holding(system, text),
        "storage": files_holding(Path(system.env["RECORDINGS_STORAGE_DIR"]), text),
        "spool": files_holding(Path(system.env["INGRESS_SPOOL_DIR"]), text),
    }
    return {where: what for where, what in held.items() if what}


def all_read(system: System) -> bool:
    """The analytics consumer has committed everything on the call-events topic."""
    bootstrap, topic = system.env["KAFKA_BOOTSTRAP_SERVERS"], system.topics.call_events
    return committed_total(bootstrap, "analytics", topic) == end_total(bootstrap, topic)


def test_an_erased_caller_is_found_nowhere_while_the_clients_counts_stay(system: System) -> None:
    client_id = system.new_client("+14155553434")
    tracked = number()
    system.assign(client_id, tracked)
    own(system, tracked)
    caller, other = number(), number()
    calls: list[dict[str, Any]] = [
        {"from": caller, "outcome": "completed", "talkSeconds": 31},
        {"from": caller, "outcome": "no-answer"},
        {"from": other, "outcome": "completed", "talkSeconds": 12},
    ]
    sids = [play(system, to=tracked, **call)["callSid"] for call in calls]

    def settled() -> dict[str, Any] | None:
        summary = system.summary(client_id)
        done = summary["totalCalls"] == 3 and summary["completed"] == 2
        return summary if done and summary["missed"] == 1 else None

    before = wait_until(settled, timeout=40.0, message="the three calls counted")
    assert before["totalDurationSec"] == 43

    def recorded() -> dict[str, Any] | None:
        reply = system.admin("GET", f"/api/privacy/callers/{caller}")
        assert reply.status_code == 200, reply.text
        held: dict[str, Any] = reply.json()
        stored = [r for r in held["recordings"] if r["status"] == "stored"]
        alerted = held["alerts"] and held["texts"]
        return held if stored and alerted and len(held["calls"]) == 2 else None

    # Export (article 15): the calls, the recordings with links that work, the missed
    # call's alert and the text-back ledger's row (no text-back: skipped) from reporting.
    exported = wait_until(recorded, timeout=30.0, message="the caller's recording and alert kept")
    assert exported["complete"] is True and exported["unavailable"] == {}
    assert sorted(c["callSid"] for c in exported["calls"]) == sorted(sids[:2])
    [alert] = exported["alerts"]
    assert (alert["callSid"], alert["callerNumber"]) == (sids[1], caller)
    assert [t["callSid"] for t in exported["texts"]] == [sids[1]]
    assert (exported["optOuts"], exported["reports"]) == ([], [])
    [recording] = exported["recordings"]
    media = requests.get(recording["downloadUrl"], timeout=10)
    assert media.status_code == 200 and len(media.content) == recording["bytes"]
    assert everywhere(system, caller)  # held in several stores until now

    # Erasure (article 17).
    clients_key = system.issue_key(client_id)
    refused = system.as_key(clients_key, "DELETE", f"/api/privacy/callers/{caller}")
    assert refused.status_code == 403  # a client may not erase across clients
    assert system.admin("DELETE", "/api/privacy/callers/12345").status_code == 400
    reply = system.admin("DELETE", f"/api/privacy/callers/{caller}")
    assert reply.status_code == 202, reply.text
    erased = reply.json()
    assert erased["complete"] is True
    stores = erased["stores"]
    assert {name: s["status"] for name, s in stores.items()} == {
        "router": "done",
        "ingressSpool": "done",
        "recordings": "done",
        "analytics": "pending",
        "reporting": "pending",
    }
    assert stores["recordings"]["deleted"] == [recording["recordingSid"]]
    token = erased["token"]
    assert caller not in reply.text.replace(f"/callers/{caller}", "")

    left: dict[str, Any] = {}

    def gone() -> bool:
        left.clear()
        left.update(everywhere(system, caller))
        return not left

    wait_until(gone, timeout=30.0, message=f"{caller} gone from every store (left: {left})")
    assert system.summary(client_id) == before
    assert system.call(sids[0])["from"] == token
    assert system.call(sids[2])["from"] == other
    # Reporting's alert names the caller by the token, and the export finds it under it.
    [alert] = system.admin("GET", f"/api/privacy/callers/{caller}").json()["alerts"]
    assert (alert["callSid"], alert["callerNumber"]) == (sids[1], token)
    assert requests.get(recording["downloadUrl"], timeout=10).status_code in (404, 410)

    # Every step audited, under the token: router's rows, recordings' part.
    audit = system.admin("GET", "/api/audit", params={"targetId": token}).json()
    actions = {entry["action"] for entry in audit["entries"]}
    assert {"caller.erasure-requested", "caller.erased", "caller.exported"} <= actions
    recordings_audit = system.admin(
        "GET", "/api/recordings/audit", params={"target": f"caller:{token}"}
    ).json()
    assert "caller.erased" in {entry["action"] for entry in recordings_audit["entries"]}
    analytics_audit = system.admin(
        "GET", "/api/analytics/audit", params={"action": "caller.erased"}
    ).json()
    assert token in {entry["targetId"] for entry in analytics_audit["entries"]}

    # A replay: the original call events again, and copies under new ids (as if the
    # events table had lost them), all read by analytics; the number stays out.
    bootstrap = system.env["KAFKA_BOOTSTRAP_SERVERS"]
    originals = [
        m
        for m in read_topic(bootstrap, system.topics.call_events, settle=2.0)
        if m["key"] in sids[:2]
    ]
    assert originals and any(caller in str(m["value"]) for m in originals)
    producer = EventProducer(bootstrap)
    try:
        for message in originals:
            event = Event(**message["value"])
            producer.publish(system.topics.call_events, event, message["key"], timeout=10)
            copy = Event(**{**message["value"], "id": str(uuid.uuid4())})
            producer.publish(system.topics.call_events, copy, message["key"], timeout=10)
    finally:
        producer.close()
    wait_until(lambda: all_read(system) or None, timeout=30.0, message="the replay read")
    assert not everywhere(system, caller)
    assert system.call(sids[0])["from"] == token
    assert system.summary(client_id) == before


def test_a_deleted_clients_calls_and_recordings_are_purged_after_the_grace_period(
    system: System,
) -> None:
    """The stack runs with ROUTER_CLIENT_PURGE_GRACE_DAYS=0: the grace period is over at once."""
    client_id = system.new_client("+14155553535")
    tracked = number()
    system.assign(client_id, tracked)
    own(system, tracked)
    sid = play(system, **{"from": number(), "to": tracked, "talkSeconds": 14})["callSid"]

    def stored() -> dict[str, Any] | None:
        reply = system.admin("GET", f"/api/twilio/recording/{sid}")
        found = reply.json().get("recordings", []) if reply.status_code == 200 else []
        return next((r for r in found if r["status"] == "stored"), None)

    recording = wait_until(stored, timeout=20.0, message="the call's recording stored")
    assert system.call(sid, timeout=10.0)["clientId"] == client_id
    staying = system.new_client("+14155553636")
    other_number = number()
    system.assign(staying, other_number)
    own(system, other_number)
    kept = play(system, **{"from": number(), "to": other_number, "talkSeconds": 9})["callSid"]
    system.call(kept, timeout=10.0)

    reply = system.admin("DELETE", f"/api/clients/{client_id}")

    assert reply.status_code == 200, reply.text
    assert reply.json()["purgeAfter"] <= datetime.now(UTC).isoformat()

    def purged() -> bool:
        media = requests.get(recording["downloadUrl"], timeout=10)
        call = system.admin("GET", f"/api/calls/{sid}")
        return media.status_code == 404 and call.status_code == 404

    wait_until(purged, timeout=30.0, message="the deleted client's call and recording purged")
    # Only the audit of who read the call stays: an audit outlives what it audits.
    assert set(analytics_holding(system, sid)) <= {"audit_log"}
    [tombstone] = system.admin("GET", f"/api/twilio/recording/{sid}").json()["recordings"]
    assert (tombstone["status"], tombstone["deletionReason"]) == ("deleted", "purge")
    assert system.call(kept)["clientId"] == staying
    audit = system.admin("GET", "/api/recordings/audit", params={"target": f"client:{client_id}"})
    assert "client.purged" in {entry["action"] for entry in audit.json()["entries"]}
