"""Analytics reads, CSV exports and conversions are audited, and the admin can query them.

Through the real analytics app on chDB: each answered read writes an entry
(who, which client, when, which endpoint, the from/to asked for, the
format) to ClickHouse; GET /api/analytics/audit lists them newest first in
router's audit shape, for the admin only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.analytics.consumer import write
from services.analytics.store import Store
from tests.analytics import producer_events
from tests.analytics.conftest import AUTH, bearer
from tests.analytics.key_service import KeyService
from tests.support import api_key
from tests.twilio_calls import ForwardedCall

CLIENT = "client-audited"
OTHER = "client-other"
KEY_NAME = f"client:{CLIENT}:key:key-audit"
METRICS = (
    "summary",
    "timeseries",
    "durations",
    "peak-hours",
    "top-callers",
    "geography",
    "lead-quality",
    "campaigns",
    "missed-calls",
)


@pytest.fixture
def call_sid(store: Store) -> str:
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    write(
        store,
        producer_events.answered_call(call, producer_events.assignment(call.to, CLIENT, "spring")),
    )
    return call.call_sid


@pytest.fixture
def key(keys: KeyService) -> dict[str, str]:
    return bearer(keys.issue(api_key("audit_test"), CLIENT, "key-audit"))


def audit(http: FlaskClient, **params: Any) -> Any:
    response = http.get("/api/analytics/audit", query_string=params, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ok(http: FlaskClient, method: str, path: str, headers: dict[str, str], **kw: Any) -> None:
    response = http.open(path, method=method, headers=headers, **kw)
    assert response.status_code in (200, 201), response.get_data(as_text=True)[:300]


def test_reads_exports_and_conversions_are_audited_with_who_which_client_when_and_range(
    make_app: Callable[..., Flask], call_sid: str, key: dict[str, str]
) -> None:
    http = make_app().test_client()
    before = datetime.now(UTC) - timedelta(seconds=1)
    ok(http, "GET", "/api/calls?from=2024-05-01&to=2024-05-03", key)
    ok(http, "GET", f"/api/calls?format=csv&clientId={CLIENT}", AUTH)
    ok(http, "GET", f"/api/calls/{call_sid}", AUTH)
    for metric in METRICS:
        ok(http, "GET", f"/api/analytics/{metric}", key)
    ok(http, "POST", "/api/analytics/conversions", key, json={"callSid": call_sid, "value": 250})

    listing = audit(http)
    entries = listing["entries"]
    assert listing["nextBefore"] is None
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert [e["action"] for e in reversed(entries)] == [
        "calls.listed",
        "calls.exported",
        "call.read",
        *["metric.read"] * len(METRICS),
        "conversion.recorded",
    ]
    for entry in entries:
        assert set(entry) == {
            "id",
            "at",
            "actor",
            "action",
            "targetType",
            "targetId",
            "clientId",
            "details",
        }
        assert entry["clientId"] == CLIENT
        assert before <= datetime.fromisoformat(entry["at"]) <= datetime.now(UTC)
    conversion, *metrics, read, export, listed = entries

    assert listed["actor"] == KEY_NAME
    assert listed["targetType"] == "calls"
    assert listed["details"]["endpoint"] == "/api/calls"
    assert listed["details"]["from"] == "2024-05-01T00:00:00.000Z"
    assert listed["details"]["to"] == "2024-05-04T00:00:00.000Z"
    assert listed["details"]["format"] == "json"

    assert export["actor"] == "admin"
    assert export["details"]["format"] == "csv"
    assert export["details"]["from"] is None and export["details"]["to"] is None

    assert (read["actor"], read["targetType"], read["targetId"]) == ("admin", "call", call_sid)

    assert [m["targetId"] for m in reversed(metrics)] == list(METRICS)
    assert {m["actor"] for m in metrics} == {KEY_NAME}
    assert metrics[-1]["details"]["endpoint"] == "/api/analytics/summary"

    assert conversion["actor"] == KEY_NAME
    assert (conversion["targetType"], conversion["targetId"]) == ("call", call_sid)
    assert conversion["details"]["value"] == 250.0


def test_refused_requests_are_not_audited_and_the_listing_is_audited_itself(
    make_app: Callable[..., Flask], call_sid: str, key: dict[str, str]
) -> None:
    http = make_app().test_client()
    assert http.get("/api/calls/CAnone", headers=AUTH).status_code == 404
    assert http.get("/api/calls?limit=0", headers=key).status_code == 400
    assert http.get("/api/calls").status_code == 401
    assert audit(http)["entries"] == []
    [listing_read] = audit(http)["entries"]
    assert (listing_read["action"], listing_read["actor"]) == ("audit.read", "admin")
    assert listing_read["clientId"] is None


def test_a_searched_callers_number_is_not_kept_in_the_audit(
    make_app: Callable[..., Flask], key: dict[str, str]
) -> None:
    http = make_app().test_client()
    ok(http, "GET", "/api/calls?caller=%2B14155550123&status=completed", key)
    [entry] = audit(http)["entries"]
    assert entry["details"]["query"] == {"caller": "(redacted)", "status": "completed"}
    assert "4155550123" not in str(entry)


def test_the_audit_is_for_the_admin_only(
    make_app: Callable[..., Flask], key: dict[str, str]
) -> None:
    http = make_app().test_client()
    refused = http.get("/api/analytics/audit", headers=key)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    assert http.get("/api/analytics/audit").status_code == 401
    assert http.get(f"/api/analytics/audit?clientId={CLIENT}", headers=key).status_code == 403


def test_the_audit_filters_by_client_and_time_and_pages_newest_first(
    make_app: Callable[..., Flask], call_sid: str, key: dict[str, str]
) -> None:
    http = make_app().test_client()
    ok(http, "GET", f"/api/analytics/summary?clientId={OTHER}", AUTH)
    other = audit(http, clientId=OTHER)["entries"]
    assert [(e["clientId"], e["actor"]) for e in other] == [(OTHER, "admin")]
    # Times are kept to the millisecond: the next reads start in a later one.
    start = datetime.fromisoformat(other[0]["at"]) + timedelta(milliseconds=1)
    while datetime.now(UTC) < start:
        pass
    for _ in range(3):
        ok(http, "GET", "/api/analytics/summary", key)

    mine = audit(http, clientId=CLIENT, limit=2)
    assert [e["actor"] for e in mine["entries"]] == [KEY_NAME, KEY_NAME]
    rest = audit(http, clientId=CLIENT, limit=2, before=mine["nextBefore"])
    assert len(rest["entries"]) == 1 and rest["nextBefore"] is None
    assert rest["entries"][0]["id"] < mine["entries"][-1]["id"]

    since = audit(http, **{"from": start.isoformat(), "action": "metric.read"})["entries"]
    assert len(since) == 3 and {e["clientId"] for e in since} == {CLIENT}
    until = audit(http, to=start.isoformat(), action="metric.read")["entries"]
    assert [e["clientId"] for e in until] == [OTHER]


def test_entries_are_in_clickhouse_once_the_app_has_closed(
    make_app: Callable[..., Flask], config: Any, key: dict[str, str]
) -> None:
    first = make_app()
    ok(first.test_client(), "GET", "/api/calls?format=csv", key)
    first.extensions["analytics"].close()

    entries = audit(make_app().test_client())["entries"]
    assert [(e["action"], e["actor"]) for e in entries] == [("calls.exported", KEY_NAME)]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=%D9%A3",
        "before=abc",
        "from=yesterday",
        "to=2024-13-01",
        "from=2024-05-02&to=2024-05-01",
        "nonsense=1",
        "clientId=" + "x" * 300,
    ],
)
def test_bad_audit_queries_are_400(make_app: Callable[..., Flask], query: str) -> None:
    response = make_app().test_client().get(f"/api/analytics/audit?{query}", headers=AUTH)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] in ("invalid_query", "invalid_parameter")
