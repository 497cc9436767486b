"""Turning one Twilio webhook into one event (pure: no I/O).

Each public callback path maps to an event type. The event keeps Twilio's form
fields verbatim under data.params (consumers derive facts from them), is keyed
by the tracked call (the parent's CallSid: a child leg's callbacks carry it as
ParentCallSid), and gets an id derived from the delivery itself, so a Twilio
retry of the same webhook is the same event to every consumer.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.events import Event, delivery_id

SOURCE = "ingress"


@dataclass(frozen=True)
class Webhook:
    kind: str
    event_type: str
    required: tuple[str, ...]


WEBHOOKS: dict[str, Webhook] = {
    "voice": Webhook("voice", "call.received", ("CallSid", "AccountSid", "From", "To")),
    "status": Webhook("status", "call.status-reported", ("CallSid", "CallStatus")),
    "dial-status": Webhook("dial-status", "call.dial-completed", ("CallSid", "DialCallStatus")),
    "recording-status": Webhook(
        "recording-status",
        "recording.status-reported",
        ("CallSid", "RecordingSid", "RecordingStatus"),
    ),
}


class MalformedWebhook(ValueError):
    """The webhook lacks fields Twilio always sends."""


def tracked_call_sid(params: dict[str, str]) -> str:
    return params.get("ParentCallSid") or params["CallSid"]


def to_event(hook: Webhook, params: dict[str, str], url: str, request_id: str | None) -> Event:
    missing = [name for name in hook.required if not params.get(name)]
    if missing:
        raise MalformedWebhook(f"missing required field(s): {', '.join(missing)}")
    return Event(
        type=hook.event_type,
        source=SOURCE,
        id=delivery_id(hook.event_type, params),
        callSid=tracked_call_sid(params),
        requestId=request_id,
        data={"params": params, "url": url},
    )


def fallback_event(params: dict[str, str], reason: str, request_id: str | None) -> Event:
    return Event(
        type="call.fallback-served",
        source=SOURCE,
        id=delivery_id("call.fallback-served", params),
        callSid=params["CallSid"],
        requestId=request_id,
        data={"reason": reason, "phoneNumber": params.get("To", "")},
    )
