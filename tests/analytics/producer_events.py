"""A forwarded call's events as their producers build them: ingress's webhooks, router's routing.

For tests that need a value to come from where it really comes from (a
campaign a client set on its number, a caller's city Twilio sent), instead
of the hand-written call scripts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.ingress.webhooks import WEBHOOKS, to_event
from services.router.directory import NumberAssignment
from services.router.facts import number_assigned
from services.router.routing import decide, routed_event
from switchboard.events import Event
from tests.twilio_calls import ForwardedCall

KINDS = {
    "/api/twilio/webhook": "voice",
    "/api/twilio/status": "status",
    "/api/twilio/dial-status": "dial-status",
    "/api/twilio/recording-status": "recording-status",
}


def assignment(
    phone: str, client_id: str, campaign: str | None, forward_to: str = "+14155559999"
) -> NumberAssignment:
    return NumberAssignment(
        phone_number=phone,
        client_id=client_id,
        forward_to=forward_to,
        record=True,
        recording_disclaimer=None,
        campaign=campaign,
        assigned_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def answered_call(call: ForwardedCall, on: NumberAssignment) -> list[Event]:
    """The number's assignment, then every event of `call` answered on it."""
    hooks = [call.incoming(), *call.answered()]
    received, *later = (
        to_event(WEBHOOKS[KINDS[hook.path]], dict(hook.params), "https://edge" + hook.path, None)
        for hook in hooks
    )
    routed = routed_event(decide(call.to, on), call.call_sid, None)
    return [number_assigned(on), received, routed, *later]
