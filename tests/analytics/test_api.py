"""The HTTP API through Flask's test client, over real chDB (and Kafka where it matters)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.analytics.config import Config
from services.analytics.consumer import write
from services.analytics.store import Store
from switchboard.events import Event
from tests.analytics import call_scripts as script
from tests.analytics.conftest import AUTH
from tests.support import wait_until

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
AppFactory = Callable[..., Flask]


def seed(store: Store, *calls: list[Event]) -> None:
    """Store calls through the consumer's write step (no broker needed here)."""
    write(store, [event for call in calls for event in call])


def get(client: FlaskClient, path: str, **params: Any) -> Any:
    response = client.get(path, query_string=params, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_consumed_events_show_in_calls_and_summary(
    make_app: AppFactory,
    publish: Callable[[list[Event]], None],
    config: Config,
) -> None:
    app = make_app(start_consumer=True)
    client = app.test_client()
    publish(
        [
            *script.answered_call("CAanswered", BASE, client_id="client-1"),
            *script.missed_call("CAmissed", BASE + timedelta(minutes=1), client_id="client-1"),
            *script.unrouted_call("CAunrouted", BASE + timedelta(minutes=2)),
            *script.fallback_call("CAfallback", BASE + timedelta(minutes=3)),
            *script.answered_call(
                "CAother", BASE + timedelta(minutes=4), client_id="client-2", talk=20
            ),
        ]
    )

    def settled() -> list[dict[str, Any]] | None:
        calls = get(client, "/api/calls")["calls"]
        done = len(calls) == 5 and all(c["status"] != "in-progress" for c in calls)
        recorded = any(c["callSid"] == "CAother" and c["recorded"] for c in calls)
        return calls if done and recorded else None

    calls = wait_until(settled)
    assert [c["callSid"] for c in calls] == [
        "CAother",
        "CAfallback",
        "CAunrouted",
        "CAmissed",
        "CAanswered",
    ]
    answered = get(client, "/api/calls/CAanswered")
    assert answered == {
        "callSid": "CAanswered",
        "clientId": "client-1",
        "direction": "inbound",
        "from": "+12125550123",
        "to": script.TWILIO_NUMBER,
        "forwardedTo": script.CLIENT_PHONE,
        "status": "completed",
        "answered": True,
        "durationSec": 42,
        "startedAt": "2024-05-01T12:00:00.000Z",
        "recorded": True,
        "callerCity": "NEW YORK",
        "callerState": "NY",
        "callerCountry": "US",
        "campaign": "spring",
        "recordingStored": False,
        "voicemail": None,
        "textBack": None,
    }
    unrouted = get(client, "/api/calls/CAunrouted")
    assert (unrouted["clientId"], unrouted["forwardedTo"], unrouted["status"]) == (
        None,
        None,
        "unrouted",
    )

    everyone = get(client, "/api/analytics/summary")
    assert everyone == {
        "clientId": None,
        "timezone": "UTC",
        "from": None,
        "to": None,
        "totalCalls": 5,
        "inbound": 5,
        "outbound": 0,
        "completed": 2,
        "missed": 2,  # no-answer + fallback's failed
        "totalDurationSec": 62,
        "avgDurationSec": 31.0,
        "answerRate": 0.5,  # 2 answered of 4 decided (unrouted left out)
        "answered": 2,
        "unrouted": 1,
        "voicemail": 0,
    }
    client_one = get(client, "/api/analytics/summary", clientId="client-1")
    assert client_one == {
        "clientId": "client-1",
        "timezone": "UTC",
        "from": None,
        "to": None,
        "totalCalls": 2,
        "inbound": 2,
        "outbound": 0,
        "completed": 1,
        "missed": 1,
        "totalDurationSec": 42,
        "avgDurationSec": 42.0,
        "answerRate": 0.5,
        "answered": 1,
        "unrouted": 0,
        "voicemail": 0,
    }
    assert [c["callSid"] for c in get(client, "/api/calls", clientId="client-1")["calls"]] == [
        "CAmissed",
        "CAanswered",
    ]
    assert [c["callSid"] for c in get(client, "/api/calls", status="failed")["calls"]] == [
        "CAfallback"
    ]
    assert client.get("/readyz").status_code == 200


def test_summary_of_a_time_window(make_app: AppFactory, store: Store) -> None:
    seed(
        store,
        script.answered_call("CAbefore", BASE - timedelta(days=1)),
        script.missed_call("CAinside", BASE + timedelta(hours=1)),
        script.answered_call("CAafter", BASE + timedelta(days=1)),
    )
    client = make_app().test_client()
    window = {"from": "2024-05-01T00:00:00Z", "to": "2024-05-01T23:59:59Z"}
    summary = get(client, "/api/analytics/summary", **window)
    assert (summary["totalCalls"], summary["missed"], summary["answerRate"]) == (1, 1, 0.0)
    # A bare date as `to` includes that whole day.
    by_day = get(client, "/api/calls", **{"from": "2024-05-01", "to": "2024-05-01"})
    assert [c["callSid"] for c in by_day["calls"]] == ["CAinside"]


def test_pagination_by_next_cursor_covers_every_call_once(
    make_app: AppFactory, store: Store
) -> None:
    # Seven calls; two start at the same millisecond to exercise the tie-break.
    sids = [f"CA{n:02d}" for n in range(7)]
    starts = [BASE + timedelta(minutes=n) for n in range(6)] + [BASE + timedelta(minutes=3)]
    seed(store, *(script.missed_call(sid, start) for sid, start in zip(sids, starts, strict=True)))
    client = make_app().test_client()

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = get(client, "/api/calls", **params)
        seen += [c["callSid"] for c in body["calls"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(sids)
    assert len(seen) == len(set(seen))
    started = [get(client, f"/api/calls/{sid}")["startedAt"] for sid in seen]
    assert started == sorted(started, reverse=True)


def test_csv_export_streams_header_and_rows(make_app: AppFactory, store: Store) -> None:
    seed(
        store,
        script.answered_call("CAone", BASE),
        script.unrouted_call("CAtwo", BASE + timedelta(minutes=1)),
    )
    client = make_app().test_client()
    response = client.get("/api/calls?format=csv", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == [
        "callSid",
        "clientId",
        "direction",
        "from",
        "to",
        "forwardedTo",
        "status",
        "answered",
        "durationSec",
        "startedAt",
        "recorded",
        "callerCity",
        "callerState",
        "callerCountry",
        "campaign",
        "recordingStored",
    ]
    assert len(rows) == 3
    assert rows[1][:3] == ["CAtwo", "", "inbound"]
    assert rows[2][0] == "CAone"
    assert rows[2][6:10] == ["completed", "true", "42", "2024-05-01T12:00:00.000Z"]


def test_csv_export_honours_filters(make_app: AppFactory, store: Store) -> None:
    seed(
        store,
        script.answered_call("CAone", BASE),
        script.unrouted_call("CAtwo", BASE + timedelta(minutes=1)),
    )
    client = make_app().test_client()
    response = client.get("/api/calls?format=csv&status=unrouted", headers=AUTH)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert [row[0] for row in rows] == ["callSid", "CAtwo"]


def test_a_voicemail_is_its_own_status_counted_as_missed(
    make_app: AppFactory, store: Store
) -> None:
    seed(
        store,
        script.answered_call("CAanswered", BASE),
        script.missed_call("CAmissed", BASE + timedelta(minutes=1)),
        script.voicemail_call("CAvoicemail", BASE + timedelta(minutes=2), message=12),
        script.voicemail_call("CAbeep", BASE + timedelta(minutes=3), message=0),
    )
    client = make_app().test_client()
    calls = {c["callSid"]: c["status"] for c in get(client, "/api/calls")["calls"]}
    assert calls == {
        "CAanswered": "completed",
        "CAmissed": "no-answer",
        "CAvoicemail": "voicemail",
        "CAbeep": "no-answer",  # hung up at the beep: no message
    }
    filtered = get(client, "/api/calls", status="voicemail")["calls"]
    assert [c["callSid"] for c in filtered] == ["CAvoicemail"]

    summary = get(client, "/api/analytics/summary")
    assert (summary["missed"], summary["voicemail"], summary["completed"]) == (3, 1, 1)
    assert summary["answerRate"] == 0.25  # voicemail is in the denominator

    missed = get(client, "/api/analytics/missed-calls")["calls"]
    assert "CAvoicemail" in [c["callSid"] for c in missed]

    detail = get(client, "/api/calls/CAvoicemail")
    assert detail["status"] == "voicemail"
    assert detail["voicemail"] == {
        "recordingSid": "REvoicemail",
        "durationSec": 12,
        "recordingUrl": "/api/twilio/recording/CAvoicemail",
    }
    assert get(client, "/api/calls/CAmissed")["voicemail"] is None

    response = client.get("/api/calls?format=csv&status=voicemail", headers=AUTH)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert [(row[0], row[6]) for row in rows[1:]] == [("CAvoicemail", "voicemail")]


def test_unknown_call_is_404(make_app: AppFactory) -> None:
    response = make_app().test_client().get("/api/calls/CAnope", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/calls?limit=0", "limit"),
        ("/api/calls?limit=abc", "limit"),
        ("/api/calls?limit=5000", "limit"),
        ("/api/calls?direction=sideways", "direction"),
        ("/api/calls?status=happy", "status"),
        ("/api/calls?from=yesterday", "from"),
        ("/api/calls?to=2024-13-45", "to"),
        ("/api/calls?from=2024-05-02&to=2024-05-01T00:00:00Z", "from"),
        ("/api/calls?cursor=%%%", "cursor"),
        ("/api/calls?format=xml", "format"),
        ("/api/analytics/summary?from=not-a-date", "from"),
    ],
)
def test_bad_parameters_are_400_with_a_reason(make_app: AppFactory, path: str, field: str) -> None:
    response = make_app().test_client().get(path, headers=AUTH)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] in ("invalid_parameter", "invalid_cursor")
    assert field in error["message"]


def test_api_needs_the_admin_token(make_app: AppFactory) -> None:
    client = make_app().test_client()
    assert client.get("/api/calls").status_code == 401
    assert client.get("/api/analytics/summary").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/api/calls/CA1", headers=wrong).status_code == 403


def test_health_and_readiness(make_app: AppFactory) -> None:
    client = make_app().test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_consumed_recording_stored_shows_in_calls(
    make_app: AppFactory, publish: Callable[[list[Event]], None]
) -> None:
    app = make_app(start_consumer=True)
    client = app.test_client()
    publish(
        [
            *script.answered_call("CAkept", BASE, client_id="client-1"),
            script.recording_stored("CAkept", BASE, "REkept"),
            *script.answered_call("CAplain", BASE + timedelta(minutes=1), client_id="client-1"),
        ]
    )

    def stored() -> dict[str, bool] | None:
        calls = get(client, "/api/calls")["calls"]
        flags = {c["callSid"]: c["recordingStored"] for c in calls}
        return flags if len(flags) == 2 and flags["CAkept"] else None

    assert wait_until(stored) == {"CAkept": True, "CAplain": False}
    assert get(client, "/api/calls/CAkept")["recordingStored"] is True
    response = client.get("/api/calls?format=csv", headers=AUTH)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    column = rows[0].index("recordingStored")
    assert {row[0]: row[column] for row in rows[1:]} == {"CAkept": "true", "CAplain": "false"}

    publish([script.recording_deleted("CAkept", BASE, "REkept")])
    wait_until(lambda: get(client, "/api/calls/CAkept")["recordingStored"] is False)
