"""A number's call flow across real processes: edge -> ingress -> router and back.

Sequential ringing moves on from the dial-status callback, which ingress
keeps as an event like any other before it asks router for the flow's next
step; when the last target does not take the call, the caller gets voicemail.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.e2e.conftest import System, number
from tests.kafka_read import read_topic
from tests.support import wait_until
from tests.twilio_calls import ForwardedCall, Webhook

TARGETS = [{"number": "+14155550101", "timeoutSec": 15}, {"number": "+14155550102"}]


def dial_status(call: ForwardedCall, action: str, status: str, bridged: bool) -> Webhook:
    """The dial-status callback Twilio posts to a <Dial action> (query string kept)."""
    (hook,) = [h for h in call.unanswered() if h.path == "/api/twilio/dial-status"]
    parts = urlsplit(action)
    params = {**hook.params, "DialCallStatus": status, "DialBridged": str(bridged).lower()}
    return replace(hook, path=f"{parts.path}?{parts.query}", params=params)


def test_sequential_ringing_moves_on_through_ingress_then_takes_a_voicemail(
    system: System,
) -> None:
    client_id = system.new_client("+14155559999")
    tracked = number()
    system.assign(client_id, tracked)
    flow = {
        "ring": {"strategy": "sequential", "targets": TARGETS},
        "voicemail": {"greeting": "Please leave a message", "maxLengthSec": 60},
    }
    assert system.admin("PUT", f"/api/numbers/{tracked}/flow", json=flow).status_code == 200
    call = ForwardedCall(to=tracked, forward_to="+14155550101")

    first = ET.fromstring(system.twilio(call.incoming()).text).find("Dial")
    assert first is not None
    assert [n.text for n in first.findall("Number")] == ["+14155550101"]

    # Picked up, but the screening (or a voicemail box) never bridged it.
    reply = system.twilio(dial_status(call, first.get("action", ""), "completed", False))
    assert reply.status_code == 200
    second = ET.fromstring(reply.text).find("Dial")
    assert second is not None
    assert [n.text for n in second.findall("Number")] == ["+14155550102"]

    reply = system.twilio(dial_status(call, second.get("action", ""), "no-answer", False))
    voicemail = ET.fromstring(reply.text)
    assert [child.tag for child in voicemail] == ["Say", "Record", "Hangup"]
    assert voicemail.findtext("Say") == "Please leave a message"

    on_kafka = read_topic(
        system.env["KAFKA_BOOTSTRAP_SERVERS"], system.topics.call_events, settle=2.0
    )
    dials = [
        m["value"]["data"]
        for m in on_kafka
        if m["key"] == call.call_sid and m["value"]["type"] == "call.dial-completed"
    ]
    assert sorted(d["params"]["DialCallStatus"] for d in dials) == ["completed", "no-answer"]
    assert {urlsplit(d["url"]).query for d in dials} == {"flowStep=0", "flowStep=1"}


def test_a_simulated_call_nobody_answers_leaves_a_voicemail_counted_stored_and_playable(
    system: System,
) -> None:
    client_id = system.new_client("+14155559999")
    tracked = number()
    system.assign(client_id, tracked)
    flow = {
        "ring": {"strategy": "sequential", "targets": TARGETS},
        "voicemail": {"greeting": "Please leave a message", "maxLengthSec": 60},
    }
    assert system.admin("PUT", f"/api/numbers/{tracked}/flow", json=flow).status_code == 200
    system.own_at_simulator(tracked)
    log = system.play(
        **{
            "from": "+12125550188",
            "to": tracked,
            "answerers": {target["number"]: "no-answer" for target in TARGETS},
            "voicemailSeconds": 12,
        }
    )
    sid = log["callSid"]
    assert all(cb["status"] == 200 for cb in log["callbacks"]), log["callbacks"]

    call = wait_until(
        lambda: (lambda c: c if c["status"] == "voicemail" else None)(system.call(sid)),
        timeout=15.0,
        message="the call's outcome is voicemail",
    )
    assert call["answered"] is False
    voicemail = call["voicemail"]
    assert voicemail["durationSec"] == 12
    assert voicemail["recordingUrl"] == f"/api/twilio/recording/{sid}"
    summary = system.summary(client_id)
    assert (summary["voicemail"], summary["missed"], summary["completed"]) == (1, 1, 0)

    def stored() -> list[dict[str, Any]] | None:
        reply = system.admin("GET", voicemail["recordingUrl"])
        if reply.status_code != 200:
            return None
        found = [r for r in reply.json()["recordings"] if r["status"] == "stored"]
        return found or None

    [recording] = wait_until(stored, timeout=15.0, message="voicemail stored")
    assert (recording["recordingSid"], recording["kind"]) == (
        voicemail["recordingSid"],
        "voicemail",
    )
    assert recording["playbackUrl"].startswith(system.url)
    played = requests.get(recording["playbackUrl"], timeout=10)
    assert played.status_code == 200
    assert len(played.content) == recording["bytes"]
