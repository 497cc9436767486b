"""Calls played by the Twilio simulator, end to end: routing, analytics, recordings."""

from __future__ import annotations

import hashlib
import wave
from io import BytesIO
from typing import Any

import requests

from tests.e2e.conftest import ACCOUNT_SID, System, number
from tests.support import wait_until


def own(system: System, phone_number: str) -> None:
    reply = requests.post(
        f"{system.simulator}/sim/numbers",
        json={
            "phoneNumber": phone_number,
            "voiceUrl": f"{system.url}/api/twilio/webhook",
            "statusCallback": f"{system.url}/api/twilio/status",
        },
        timeout=10,
    )
    assert reply.status_code in (200, 201), reply.text


def play(system: System, **call: Any) -> dict[str, Any]:
    reply = requests.post(f"{system.simulator}/sim/calls", json=call, timeout=10)
    assert reply.status_code == 202, reply.text
    sid = reply.json()["callSid"]
    finished = wait_until(
        lambda: (lambda log: log if log["state"] == "finished" else None)(
            requests.get(
                f"{system.simulator}/sim/calls/{sid}", params={"wait": 5}, timeout=15
            ).json()
        ),
        timeout=30,
        message=f"simulated call {sid} finished",
    )
    return dict(finished)


def test_simulated_answered_call_is_counted_recorded_and_playable_through_the_edge(
    system: System,
) -> None:
    client_id = system.new_client("+14155553333")
    tracked = number()
    system.assign(client_id, tracked)
    own(system, tracked)
    log = play(
        system,
        **{
            "from": "+12125550199",
            "to": tracked,
            "outcome": "completed",
            "talkSeconds": 37,
            "ringSeconds": 6,
        },
    )
    sid = log["callSid"]
    assert all(cb["status"] == 200 for cb in log["callbacks"]), log["callbacks"]

    fact = wait_until(
        lambda: (lambda f: f if f["status"] == "completed" else None)(system.call(sid)),
        timeout=5.0,
        message="answered call in analytics",
    )
    assert fact["clientId"] == client_id
    assert fact["durationSec"] == 37
    assert fact["answered"] is True

    def stored() -> list[dict[str, Any]] | None:
        reply = system.admin("GET", f"/api/twilio/recording/{sid}")
        if reply.status_code != 200:
            return None
        found = [r for r in reply.json()["recordings"] if r["status"] == "stored"]
        return found or None

    recordings = wait_until(stored, timeout=15.0, message="recording stored")
    assert len(recordings) == 1
    recording = recordings[0]
    assert recording["clientId"] == client_id
    assert recording["playbackUrl"].startswith(system.url)

    whole = requests.get(recording["downloadUrl"], timeout=10)
    assert whole.status_code == 200
    assert recording["bytes"] == len(whole.content)
    with wave.open(BytesIO(whole.content)) as audio:
        assert audio.getnchannels() == 2
    # The client did not ask to delete Twilio's copy, so it is still there to compare.
    twilio_copy = requests.get(
        f"{system.simulator}/2010-04-01/Accounts/{ACCOUNT_SID}"
        f"/Recordings/{recording['recordingSid']}.wav",
        auth=(ACCOUNT_SID, system.env["TWILIO_AUTH_TOKEN"]),
        timeout=10,
    )
    assert twilio_copy.status_code == 200
    assert hashlib.sha256(twilio_copy.content).digest() == hashlib.sha256(whole.content).digest()

    part = requests.get(recording["playbackUrl"], headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206
    assert part.content == whole.content[:100]
    tampered = recording["playbackUrl"].replace("sig=", "sig=0")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_simulated_busy_call_is_missed_and_has_no_recording(system: System) -> None:
    client_id = system.new_client("+14155554444")
    tracked = number()
    system.assign(client_id, tracked)
    own(system, tracked)
    log = play(system, **{"from": "+12125550100", "to": tracked, "outcome": "busy"})
    sid = log["callSid"]
    fact = wait_until(
        lambda: (lambda f: f if f["status"] == "busy" else None)(system.call(sid)),
        timeout=5.0,
        message="busy call in analytics",
    )
    assert fact["answered"] is False
    assert fact["recorded"] is False
    assert system.summary(client_id)["missed"] == 1
