"""Ingress's routing copy: number events applied in order, and the answers it gives (pure).

Events are router's own (services/router/facts.py), as they travel on the
number-events topic.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.ingress.routing_copy import (
    CallContext,
    CopiedNumber,
    ReleasedNumber,
    RoutingCopy,
    answer_after_dial,
    answer_call,
)
from services.router import facts
from services.router.dialing import DialPolicy
from services.router.directory import NumberAssignment
from services.router.flows import DAYS, Flow
from switchboard import events
from switchboard.events import Event

NUMBER = "+14155550100"
TARGETS = [{"number": "+14155550101", "timeoutSec": 15}, {"number": "+14155550102"}]
MONDAY_NOON_UTC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CONTEXT = CallContext("https://edge.example.com", 20, MONDAY_NOON_UTC)
CALL = {"CallSid": "CA" + "1" * 32, "To": NUMBER, "From": "+12125550199"}


def flow(**body: Any) -> Flow:
    return Flow.parse(body, NUMBER, DialPolicy())


def assignment(
    with_flow: Flow | None = None, timezone: str = "UTC", forward_to: str = "+14155559999"
) -> NumberAssignment:
    return NumberAssignment(
        NUMBER,
        "c1",
        forward_to,
        True,
        "This call may be recorded.",
        "mailer",
        datetime(2026, 1, 1, tzinfo=UTC),
        timezone,
        with_flow,
    )


def on_the_topic(event: Event, at: datetime) -> Event:
    """The event as a consumer decodes it from Kafka, stamped `at`."""
    return events.decode(replace(event, occurredAt=at.isoformat()).to_json())


def copy_of(*stamped: Event) -> RoutingCopy:
    copy = RoutingCopy()
    for event in stamped:
        copy.apply(event)
    return copy


def xml(text: str) -> ET.Element:
    return ET.fromstring(text)


def test_an_assigned_number_is_copied_with_all_routing_needs() -> None:
    sequential = flow(ring={"strategy": "sequential", "targets": TARGETS})
    event = on_the_topic(
        facts.number_assigned(assignment(sequential, "America/Denver")), MONDAY_NOON_UTC
    )
    entry = copy_of(event).lookup(NUMBER)
    assert isinstance(entry, CopiedNumber)
    assert (entry.client_id, entry.forward_to, entry.record, entry.campaign) == (
        "c1",
        "+14155559999",
        True,
        "mailer",
    )
    assert (entry.recording_disclaimer, entry.timezone) == (
        "This call may be recorded.",
        "America/Denver",
    )
    assert entry.flow is not None and entry.flow.to_json() == sequential.to_json()


def test_events_apply_in_order_and_a_release_stops_routing() -> None:
    t0 = MONDAY_NOON_UTC - timedelta(hours=1)
    assigned = on_the_topic(facts.number_assigned(assignment()), t0)
    moved = on_the_topic(
        facts.number_assigned(assignment(forward_to="+14155558888")), t0 + timedelta(minutes=1)
    )
    released = on_the_topic(
        facts.number_released(assignment(), t0 + timedelta(minutes=2)), t0 + timedelta(minutes=2)
    )
    copy = copy_of(assigned, moved)
    entry = copy.lookup(NUMBER)
    assert isinstance(entry, CopiedNumber) and entry.forward_to == "+14155558888"
    assert copy.apply(released)
    assert isinstance(copy.lookup(NUMBER), ReleasedNumber)
    # An older event republished after the release changes nothing.
    assert not copy.apply(moved)
    assert isinstance(copy.lookup(NUMBER), ReleasedNumber)


def test_rebuilding_from_the_same_events_gives_the_same_copy() -> None:
    t0 = MONDAY_NOON_UTC - timedelta(hours=1)
    stream = [
        on_the_topic(facts.number_assigned(assignment()), t0),
        on_the_topic(
            facts.number_assigned(assignment(flow(whisper="Hi"))), t0 + timedelta(minutes=1)
        ),
    ]
    first, rebuilt = copy_of(*stream), copy_of(*stream)
    assert first.lookup(NUMBER) == rebuilt.lookup(NUMBER)
    assert len(first) == len(rebuilt) == 1


def test_a_known_number_is_answered_with_its_flow_and_the_routed_fact() -> None:
    ring_all = flow(ring={"targets": TARGETS}, whisper="Call from {campaign}", screening=True)
    copy = copy_of(on_the_topic(facts.number_assigned(assignment(ring_all)), MONDAY_NOON_UTC))
    answer = answer_call(copy, CALL, CONTEXT, "req-1")
    assert answer is not None
    root = xml(answer.twiml)
    assert root.findtext("Say") == "This call may be recorded."
    numbers = root.findall("Dial/Number")
    assert [n.text for n in numbers] == ["+14155550101", "+14155550102"]
    assert all("/api/twilio/flow/answer?" in n.get("url", "") for n in numbers)
    routed = answer.routed
    assert routed is not None and routed.type == "call.routed" and routed.source == "ingress"
    events.validate(routed.to_dict())
    assert routed.data["disposition"] == "forwarded" and routed.clientId == "c1"


def test_business_hours_are_the_copys_clients_time_zone() -> None:
    weekdays = flow(
        businessHours={"weekly": {day: [["09:00", "17:00"]] for day in DAYS[:5]}},
        afterHours="voicemail",
    )
    # Monday noon UTC is 05:00 in Denver: closed, so voicemail.
    copy = copy_of(
        on_the_topic(facts.number_assigned(assignment(weekdays, "America/Denver")), MONDAY_NOON_UTC)
    )
    answer = answer_call(copy, CALL, CONTEXT, None)
    assert answer is not None
    assert [c.tag for c in xml(answer.twiml)] == ["Say", "Say", "Record", "Hangup"]


def test_a_released_number_is_not_in_service_and_an_unknown_one_gets_no_answer() -> None:
    copy = copy_of(
        on_the_topic(facts.number_released(assignment(), MONDAY_NOON_UTC), MONDAY_NOON_UTC)
    )
    answer = answer_call(copy, CALL, CONTEXT, None)
    assert answer is not None and xml(answer.twiml).find("Dial") is None
    assert answer.routed is not None and answer.routed.data["disposition"] == "unassigned"
    assert answer_call(copy, {**CALL, "To": "+14155550999"}, CONTEXT, None) is None


def test_sequential_ringing_falls_through_from_the_copy_then_to_voicemail() -> None:
    sequential = flow(
        ring={"strategy": "sequential", "targets": TARGETS},
        voicemail={"greeting": "Leave a message", "maxLengthSec": 60},
    )
    copy = copy_of(on_the_topic(facts.number_assigned(assignment(sequential)), MONDAY_NOON_UTC))
    declined = {**CALL, "DialCallStatus": "completed", "DialBridged": "false"}
    following = answer_after_dial(copy, declined, "0", CONTEXT)
    assert following is not None
    assert [n.text for n in xml(following.twiml).findall("Dial/Number")] == ["+14155550102"]
    last = answer_after_dial(copy, {**CALL, "DialCallStatus": "no-answer"}, "1", CONTEXT)
    assert last is not None
    voicemail = xml(last.twiml)
    assert [c.tag for c in voicemail] == ["Say", "Record", "Hangup"]
    assert voicemail.findtext("Say") == "Leave a message"
    assert answer_after_dial(copy, declined, "ten", CONTEXT) is None
    assert answer_after_dial(copy, {**declined, "To": "+14155550999"}, "0", CONTEXT) is None
