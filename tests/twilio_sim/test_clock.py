"""The settable clock: a call placed after POST /sim/clock starts at the simulated time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests
from twilio.twiml.voice_response import VoiceResponse

from tests.twilio_sim.receiver import WebhookReceiver
from tests.twilio_sim.simulator import Simulator

MONDAY_10AM_PACIFIC = "2026-12-07T10:00:00-08:00"
MONDAY_10AM_UTC = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def set_clock(sim: Simulator, now: str | None) -> requests.Response:
    return requests.post(f"{sim.base_url}/sim/clock", json={"now": now}, timeout=10)


@pytest.fixture
def clock_reset(simulator: Simulator) -> Iterator[None]:
    yield
    set_clock(simulator, None).raise_for_status()


@pytest.mark.usefixtures("clock_reset")
def test_a_call_starts_at_the_set_time_and_its_callbacks_say_so(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    reply = set_clock(simulator, MONDAY_10AM_PACIFIC)
    assert reply.status_code == 200
    assert reply.json()["set"] is True
    simulated = datetime.fromisoformat(reply.json()["now"].replace("Z", "+00:00"))
    assert MONDAY_10AM_UTC <= simulated < MONDAY_10AM_UTC + timedelta(seconds=5)

    response = VoiceResponse()
    response.say("Thanks for calling")
    receiver.reply("/voice", str(response))
    simulator.own_number(
        tracking_number, f"{receiver.base_url}/voice", statusCallback=f"{receiver.base_url}/status"
    )
    sid = simulator.place_call(**{"from": "+14155550111", "to": tracking_number})
    play = simulator.wait_for_call(sid)
    started = datetime.fromisoformat(play["simulatedStart"].replace("Z", "+00:00"))
    assert MONDAY_10AM_UTC <= started < MONDAY_10AM_UTC + timedelta(seconds=30)

    [status] = receiver.received("/status")
    stamped = parsedate_to_datetime(status.params["Timestamp"])
    assert started < stamped < started + timedelta(minutes=2)
    call = simulator.client().calls(sid).fetch()
    assert call.start_time is not None and call.start_time >= MONDAY_10AM_UTC
    assert call.start_time < MONDAY_10AM_UTC + timedelta(minutes=1)
    # Only the time moved: the webhook carries what it always does.
    assert receiver.received("/voice")[0].params["CallStatus"] == "ringing"

    back = set_clock(simulator, None).json()
    assert back["set"] is False
    real = datetime.fromisoformat(back["now"].replace("Z", "+00:00"))
    assert abs(real - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.usefixtures("clock_reset")
@pytest.mark.parametrize("now", ["next monday", "2026-12-07T10:00:00", 42])
def test_a_bad_time_is_a_400_and_leaves_the_clock_alone(simulator: Simulator, now: object) -> None:
    reply = requests.post(f"{simulator.base_url}/sim/clock", json={"now": now}, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_field"
    assert requests.get(f"{simulator.base_url}/sim/clock", timeout=10).json()["set"] is False
