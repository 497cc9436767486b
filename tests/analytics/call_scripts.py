"""Realistic event sequences of whole calls, as ingress and router publish them.

Webhook events get deterministic ids (switchboard.events.delivery_id), so a
script built twice yields the same events, as Twilio retries would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from switchboard.events import Event, delivery_id

ACCOUNT = "AC00000000000000000000000000000001"
TWILIO_NUMBER = "+14155550100"
CLIENT_PHONE = "+14155550199"


def at(base: datetime, seconds: float) -> str:
    moment = base + timedelta(seconds=seconds)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook(
    kind: str, event_type: str, call_sid: str, params: dict[str, str], occurred: str
) -> Event:
    return Event(
        type=event_type,
        source="ingress",
        id=delivery_id(kind, params),
        occurredAt=occurred,
        callSid=call_sid,
        data={"params": params, "url": f"https://example.test/api/twilio/{kind}"},
    )


def received(
    sid: str, base: datetime, caller: str = "+12125550123", direction: str = "inbound"
) -> Event:
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "ringing",
        "Direction": direction,
        "From": caller,
        "To": TWILIO_NUMBER,
        "Caller": caller,
        "Called": TWILIO_NUMBER,
        "FromCity": "NEW YORK",
        "FromState": "NY",
        "FromZip": "10001",
        "FromCountry": "US",
        "CallerCity": "NEW YORK",
        "CallerState": "NY",
        "CallerCountry": "US",
        "ToCity": "SAN FRANCISCO",
        "ToState": "CA",
        "ToCountry": "US",
    }
    return webhook("webhook", "call.received", sid, params, at(base, 0))


def routed(
    sid: str,
    base: datetime,
    client_id: str | None = "client-1",
    disposition: str = "forwarded",
    recording: bool = True,
    campaign: str | None = "spring",
) -> Event:
    forwarded = disposition == "forwarded"
    return Event(
        type="call.routed",
        source="router",
        id=f"routed-{sid}",
        occurredAt=at(base, 0.05),
        callSid=sid,
        clientId=client_id,
        data={
            "phoneNumber": TWILIO_NUMBER,
            "disposition": disposition,
            "clientId": client_id,
            "forwardTo": CLIENT_PHONE if forwarded else None,
            "recording": recording,
            "campaign": campaign,
        },
    )


def fallback(sid: str, base: datetime) -> Event:
    return Event(
        type="call.fallback-served",
        source="ingress",
        id=f"fallback-{sid}",
        occurredAt=at(base, 1.5),
        callSid=sid,
        data={"reason": "router timed out", "phoneNumber": TWILIO_NUMBER},
    )


def child_status(
    sid: str, base: datetime, status: str, duration: int | None, offset: float, seq: int
) -> Event:
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": f"{sid}-child",
        "ParentCallSid": sid,
        "CallStatus": status,
        "Direction": "outbound-dial",
        "From": TWILIO_NUMBER,
        "To": CLIENT_PHONE,
        "SequenceNumber": str(seq),
        "CallbackSource": "call-progress-events",
    }
    if duration is not None:
        params["CallDuration"] = str(duration)
    return webhook("status", "call.status-reported", sid, params, at(base, offset))


def dial_completed(
    sid: str,
    base: datetime,
    status: str,
    duration: int | None,
    offset: float,
    bridged: str | None = None,
) -> Event:
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "CallStatus": "in-progress",
        "DialCallSid": f"{sid}-child",
        "DialCallStatus": status,
    }
    if duration is not None:
        params["DialCallDuration"] = str(duration)
    if bridged is not None:
        params["DialBridged"] = bridged
    return webhook("dial-status", "call.dial-completed", sid, params, at(base, offset))


def parent_status(
    sid: str, base: datetime, status: str, duration: int | None, offset: float
) -> Event:
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": "+12125550123",
        "To": TWILIO_NUMBER,
        "SequenceNumber": "0",
    }
    if duration is not None:
        params["CallDuration"] = str(duration)
    return webhook("status", "call.status-reported", sid, params, at(base, offset))


def recording(sid: str, base: datetime, status: str = "completed") -> Event:
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "RecordingSid": f"RE{sid[2:]}",
        "RecordingStatus": status,
        "RecordingDuration": "40",
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{sid[2:]}",
        "RecordingSource": "DialVerb",
    }
    return webhook("recording-status", "recording.status-reported", sid, params, at(base, 60))


def answered_call(
    sid: str, base: datetime, client_id: str = "client-1", talk: int = 42
) -> list[Event]:
    """Forwarded, the client picks up after 8 s of ringing and talks `talk` s."""
    ringing = 8
    return [
        received(sid, base),
        routed(sid, base, client_id),
        child_status(sid, base, "ringing", None, 3, 1),
        child_status(sid, base, "in-progress", None, 3 + ringing, 2),
        child_status(sid, base, "completed", talk, 3 + ringing + talk, 3),
        dial_completed(sid, base, "completed", talk, 3 + ringing + talk + 0.2, bridged="true"),
        parent_status(sid, base, "completed", 3 + ringing + talk + 1, 3 + ringing + talk + 1),
        recording(sid, base),
    ]


def missed_call(sid: str, base: datetime, client_id: str = "client-1") -> list[Event]:
    """Forwarded, the client's phone rings out; Twilio answered the parent, so it completed."""
    return [
        received(sid, base),
        routed(sid, base, client_id),
        child_status(sid, base, "no-answer", None, 33, 1),
        dial_completed(sid, base, "no-answer", None, 33.2),
        parent_status(sid, base, "completed", 35, 35),
    ]


def unrouted_call(sid: str, base: datetime) -> list[Event]:
    """Nobody owns the number: router says so, the caller hears a message."""
    return [
        received(sid, base),
        routed(sid, base, client_id=None, disposition="unassigned", recording=False, campaign=None),
        parent_status(sid, base, "completed", 6, 6),
    ]


def fallback_call(sid: str, base: datetime) -> list[Event]:
    """Router did not answer in time; ingress served the fallback TwiML."""
    return [received(sid, base), fallback(sid, base), parent_status(sid, base, "completed", 9, 9)]
