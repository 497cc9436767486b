"""From a signed Twilio webhook at the edge to a call in analytics, across real processes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import System, number
from tests.kafka_read import read_topic
from tests.support import wait_until
from tests.twilio_calls import ForwardedCall


def settled_call(
    system: System, call_sid: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The call as analytics shows it, once `done` holds for it."""

    def fact() -> dict[str, Any] | None:
        found = system.call(call_sid)
        return found if done(found) else None

    return wait_until(fact, timeout=5.0, message=f"call {call_sid} settled")


def test_answered_forwarded_call_counts_with_the_dial_talk_time_not_the_parent_duration(
    system: System,
) -> None:
    client_id = system.new_client("+14155559999")
    tracked = number()
    system.assign(client_id, tracked)
    call = ForwardedCall(to=tracked, forward_to="+14155559999")

    reply = system.twilio(call.incoming())
    assert reply.status_code == 200
    root = ET.fromstring(reply.text)
    assert root[0].tag == "Say" and "recorded" in (root[0].text or "")
    dial = root.find("Dial")
    assert dial is not None
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("action", "").endswith("/api/twilio/dial-status")
    assert dial.find("Number").text == "+14155559999"  # type: ignore[union-attr]

    for hook in call.answered(talk_seconds=42, ring_seconds=9):
        assert system.twilio(hook).status_code == 200

    fact = settled_call(
        system, call.call_sid, lambda f: f["status"] == "completed" and f["recorded"]
    )
    assert fact["clientId"] == client_id
    assert fact["durationSec"] == 42
    assert fact["answered"] is True
    assert fact["direction"] == "inbound"
    assert fact["forwardedTo"] == "+14155559999"
    assert fact["callerCity"] == "SAN FRANCISCO"

    listed = system.admin("GET", "/api/calls", params={"clientId": client_id}).json()["calls"]
    assert [c["callSid"] for c in listed] == [call.call_sid]
    summary = system.summary(client_id)
    assert summary["totalCalls"] == 1
    assert summary["completed"] == 1
    assert summary["missed"] == 0
    assert summary["totalDurationSec"] == 42


def test_unanswered_forwarded_call_is_missed_although_the_parent_completed(
    system: System,
) -> None:
    client_id = system.new_client("+14155558888")
    tracked = number()
    system.assign(client_id, tracked)
    call = ForwardedCall(to=tracked, forward_to="+14155558888")
    assert system.twilio(call.incoming()).status_code == 200
    for hook in call.unanswered():
        assert system.twilio(hook).status_code == 200

    fact = settled_call(system, call.call_sid, lambda f: f["status"] == "no-answer")
    assert fact["answered"] is False
    assert fact["durationSec"] == 0
    assert fact["clientId"] == client_id
    summary = system.summary(client_id)
    assert summary["missed"] == 1
    assert summary["completed"] == 0


def test_unknown_number_gets_polite_twiml_and_appears_unrouted(system: System) -> None:
    call = ForwardedCall(to=number(), forward_to="+14155550000")
    reply = system.twilio(call.incoming())
    assert reply.status_code == 200
    root = ET.fromstring(reply.text)
    assert root.find("Dial") is None
    assert root.find("Say") is not None and root.find("Hangup") is not None

    fact = settled_call(system, call.call_sid, lambda f: f["status"] == "unrouted")
    assert fact["clientId"] in (None, "")
    assert fact["answered"] is False


def test_invalid_signature_is_refused_at_the_edge_and_nothing_reaches_kafka(
    system: System,
) -> None:
    call = ForwardedCall(to=number(), forward_to="+14155550000")
    reply = system.twilio(call.incoming(), signature="bm90IGEgc2lnbmF0dXJl")
    assert reply.status_code == 403
    on_kafka = read_topic(
        system.env["KAFKA_BOOTSTRAP_SERVERS"], system.topics.call_events, settle=2.0
    )
    assert call.call_sid not in {m["key"] for m in on_kafka}
    assert system.admin("GET", f"/api/calls/{call.call_sid}").status_code == 404


def test_webhooks_delivered_twice_leave_the_counts_unchanged(system: System) -> None:
    client_id = system.new_client("+14155557777")
    tracked = number()
    system.assign(client_id, tracked)
    answered = ForwardedCall(to=tracked, forward_to="+14155557777")
    missed = ForwardedCall(to=tracked, forward_to="+14155557777")
    hooks = [
        answered.incoming(),
        *answered.answered(talk_seconds=30),
        missed.incoming(),
        *missed.unanswered(),
    ]
    for hook in hooks:
        assert system.twilio(hook).status_code == 200

    def settled() -> dict[str, object] | None:
        summary = system.summary(client_id)
        return summary if summary["completed"] == 1 and summary["missed"] == 1 else None

    first = wait_until(settled, timeout=5.0, message="both calls counted")
    for hook in hooks:  # Twilio retries every one of them
        assert system.twilio(hook).status_code == 200
    system.analytics_caught_up()
    again = system.summary(client_id)
    assert again == first
    assert again["totalCalls"] == 2
    assert again["totalDurationSec"] == 30
