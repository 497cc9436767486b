"""The event envelope and its schemas (pure: no broker)."""

from __future__ import annotations

import dataclasses
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


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"not json", b"[1, 2]", b"\xff\xfe", b'{"a": NaN}', b'{"a": "\\ud800"}'],
)
def test_undecodable_message_is_an_invalid_event(raw: bytes | None) -> None:
    with pytest.raises(events.InvalidEvent):
        events.decode(raw)


# Times RFC 3339 allows, so the schema's date-time format lets them through,
# that Python's datetime cannot hold: lower-case separators, a leap second,
# an offset that moves the time past year 9999.
UNREADABLE_TIMES = ["2024-05-01t12:00:00z", "2024-06-30T23:59:60Z", "9999-12-31T23:59:59-23:59"]


@pytest.mark.parametrize("moment", UNREADABLE_TIMES)
def test_an_occurred_at_the_schema_allows_but_no_time_can_be_read_from_is_refused(
    moment: str,
) -> None:
    body = received(occurredAt=moment)
    events.validate(body)  # the schema alone lets it through
    with pytest.raises(events.InvalidEvent, match="occurredAt"):
        events.decode(json.dumps(body).encode())


def test_webhook_delivery_id_ignores_field_order_but_not_values() -> None:
    a = events.delivery_id("call.received", {"CallSid": "CA1", "From": "+1"})
    b = events.delivery_id("call.received", {"From": "+1", "CallSid": "CA1"})
    c = events.delivery_id("call.received", {"From": "+2", "CallSid": "CA1"})
    assert a == b != c


def test_occurred_at_is_parsed_once_and_does_not_change_equality() -> None:
    event = events.decode(json.dumps(received(occurredAt="2024-05-01T14:00:00.250+02:00")).encode())
    first = event.occurred_at
    assert first.isoformat() == "2024-05-01T12:00:00.250000+00:00"
    assert event.occurred_at is first
    assert event == events.decode(event.to_json())
    assert "occurred_at" not in event.to_dict()


def test_decode_builds_the_same_event_as_the_constructor() -> None:
    body = received(clientId="acme", requestId="req-1")
    decoded = events.decode(json.dumps(body).encode())
    built = events.Event(**{k: v for k, v in body.items()})
    assert decoded == built
    assert repr(decoded) == repr(built)
    # decode has read occurredAt already, as the occurred_at property would
    fields = [name for name in vars(decoded) if name != "occurred_at"]
    assert [f.name for f in dataclasses.fields(events.Event)] == fields
    assert decoded.occurred_at == built.occurred_at
