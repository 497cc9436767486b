"""One webhook becomes one event (pure logic)."""

from __future__ import annotations

import pytest

from services.ingress.webhooks import WEBHOOKS, MalformedWebhook, fallback_event, to_event
from switchboard import events
from tests.twilio_calls import ForwardedCall


def test_every_webhook_of_an_answered_call_becomes_a_schema_valid_event() -> None:
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    kinds = {
        "/api/twilio/webhook": "voice",
        "/api/twilio/status": "status",
        "/api/twilio/dial-status": "dial-status",
        "/api/twilio/recording-status": "recording-status",
    }
    for hook in [call.incoming(), *call.answered()]:
        event = to_event(WEBHOOKS[kinds[hook.path]], hook.params, "http://x" + hook.path, "r1")
        events.validate(event.to_dict())
        assert event.callSid == call.call_sid  # child-leg callbacks key on the parent


def test_retried_delivery_gets_the_same_event_id() -> None:
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    hook = call.incoming()
    first = to_event(WEBHOOKS["voice"], dict(hook.params), "u", "r1")
    retry = to_event(WEBHOOKS["voice"], dict(hook.params), "u", "r2")
    other = to_event(WEBHOOKS["voice"], {**hook.params, "CallSid": "CA" + "f" * 32}, "u", "r1")
    assert first.id == retry.id
    assert other.id != first.id


def test_webhook_without_call_sid_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="CallSid"):
        to_event(WEBHOOKS["status"], {"CallStatus": "completed"}, "u", None)


def test_fallback_event_is_schema_valid() -> None:
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    event = fallback_event(call.incoming().params, "router timed out", None)
    events.validate(event.to_dict())
    assert event.data["phoneNumber"] == "+14155550100"
