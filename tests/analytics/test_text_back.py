"""A missed call's text-back (reporting's sms.sent) shows on the call's detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from services.reporting.sms import sms_sent
from switchboard.events import Event
from tests.analytics import call_scripts as script
from tests.analytics.conftest import AUTH
from tests.support import wait_until

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CALLER = "+12125550123"  # call_scripts' caller


def test_the_text_back_a_missed_call_got_shows_on_the_call(
    make_app: Callable[..., Flask], publish: Callable[[list[Event]], None]
) -> None:
    client = make_app(start_consumer=True).test_client()
    sent_at = BASE + timedelta(minutes=1, seconds=40)
    text = sms_sent(
        "CAtexted",
        "client-1",
        "SM" + "ab" * 16,
        CALLER,
        script.TWILIO_NUMBER,
        "Sorry we missed your call.",
        "queued",
        sent_at,
    )
    publish(
        [
            *script.missed_call("CAtexted", BASE, client_id="client-1"),
            text,
            text,  # republished after a crash: the same event
            *script.missed_call("CAquiet", BASE + timedelta(minutes=5), client_id="client-1"),
        ]
    )

    def detail(call_sid: str) -> dict[str, Any] | None:
        response = client.get(f"/api/calls/{call_sid}", headers=AUTH)
        return response.get_json() if response.status_code == 200 else None

    texted = wait_until(lambda: (d := detail("CAtexted")) and d["textBack"] and d)
    assert texted["status"] == "no-answer"
    assert texted["textBack"] == {
        "to": CALLER,
        "messageSid": "SM" + "ab" * 16,
        "sentAt": "2024-05-01T12:01:40.000Z",
    }
    quiet = wait_until(lambda: detail("CAquiet"))
    assert quiet["textBack"] is None
    listed = client.get("/api/calls", headers=AUTH).get_json()["calls"]
    assert all("textBack" not in call for call in listed)
