"""The routing decision and its call.routed event (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.router.directory import NumberAssignment
from services.router.routing import decide, routed_event
from switchboard import events

ASSIGNMENT = NumberAssignment(
    phone_number="+14155550100",
    client_id="0b6f7d1c-3a55-4f0a-9a39-4d7b8e1f2a10",
    forward_to="+14155559999",
    record=True,
    recording_disclaimer="This call is recorded.",
    campaign="spring-mailer",
    assigned_at=datetime(2025, 1, 1, tzinfo=UTC),
)


def test_assigned_number_is_forwarded_to_its_client_phone() -> None:
    decision = decide("+14155550100", ASSIGNMENT)
    assert decision.disposition == "forwarded"
    assert decision.forward_to == "+14155559999"
    assert decision.client_id == ASSIGNMENT.client_id
    assert decision.record is True


def test_unknown_number_is_unassigned_and_not_recorded() -> None:
    decision = decide("+14155550199", None)
    assert decision.disposition == "unassigned"
    assert decision.client_id is None
    assert decision.forward_to is None
    assert decision.record is False


def test_forwarded_call_event_is_valid_and_names_client_and_campaign() -> None:
    event = routed_event(decide("+14155550100", ASSIGNMENT), "CA123", "req-1").to_dict()
    events.validate(event)
    assert event["type"] == "call.routed"
    assert event["callSid"] == "CA123"
    assert event["clientId"] == ASSIGNMENT.client_id
    assert event["requestId"] == "req-1"
    assert event["data"] == {
        "phoneNumber": "+14155550100",
        "disposition": "forwarded",
        "clientId": ASSIGNMENT.client_id,
        "forwardTo": "+14155559999",
        "recording": True,
        "campaign": "spring-mailer",
        "flow": None,
        "inHours": True,
    }


def test_unassigned_call_event_is_valid_without_client_or_request_id() -> None:
    event = routed_event(decide("+14155550199", None), "CA124", None).to_dict()
    events.validate(event)
    assert "clientId" not in event
    assert "requestId" not in event
    assert event["data"]["disposition"] == "unassigned"
    assert event["data"]["clientId"] is None


def test_routing_the_same_call_twice_yields_the_same_event_id() -> None:
    decision = decide("+14155550100", ASSIGNMENT)
    first = routed_event(decision, "CA125", "req-1")
    retry = routed_event(decision, "CA125", "req-2")
    other = routed_event(decision, "CA126", "req-1")
    assert first.id == retry.id
    assert first.id != other.id
