"""The event envelope and its schemas (pure: no broker)."""

from __future__ import annotations

import json

import pytest

from switchboard import events


def received(**overrides: object) -> dict[str, object]:
    event = events.Event(
        type="call.received",
        source="ingress",
        callSid="CA1",
        data={"params": {"CallSid": "CA1", "AccountSid": "AC1", "From": "+1", "To": "+2"}},
    ).to_dict()
    event.update(overrides)
    return event


def test_every_schema_file_names_its_type_and_compiles() -> None:
    types = events.event_types()
    assert ("call.received", 1) in types and ("call.routed", 1) in types
    for event_type, version in types:
        schema = json.loads((events.SCHEMAS_DIR / f"{event_type}.v{version}.json").read_text())
        assert schema["$id"] == f"urn:switchboard:schema:{event_type}:v{version}"
        events._validator(event_type, version)


def test_valid_event_round_trips_through_decode() -> None:
    event = received()
    decoded = events.decode(json.dumps(event).encode())
    assert decoded.to_dict() == event


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"occurredAt": "yesterday"}, "date-time"),
        ({"type": "call.unheard-of"}, "unknown event type"),
        ({"data": {"params": {"CallSid": "CA1"}}}, "AccountSid"),
        ({"id": ""}, "id"),
        ({"version": "1"}, "integer 'version'"),
    ],
)
def test_invalid_event_is_refused_with_the_reason(
    overrides: dict[str, object], reason: str
) -> None:
    with pytest.raises(events.InvalidEvent, match=reason):
        events.validate(received(**overrides))


@pytest.mark.parametrize("raw", [None, b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_undecodable_message_is_an_invalid_event(raw: bytes | None) -> None:
    with pytest.raises(events.InvalidEvent):
        events.decode(raw)


def test_webhook_delivery_id_ignores_field_order_but_not_values() -> None:
    a = events.delivery_id("call.received", {"CallSid": "CA1", "From": "+1"})
    b = events.delivery_id("call.received", {"From": "+1", "CallSid": "CA1"})
    c = events.delivery_id("call.received", {"From": "+2", "CallSid": "CA1"})
    assert a == b != c
