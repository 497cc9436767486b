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


NEW_YORK = ("NEW YORK", "NY", "US")


def received(
    sid: str,
    base: datetime,
    caller: str = "+12125550123",
    direction: str = "inbound",
    place: tuple[str, str, str] = NEW_YORK,
    to: str = TWILIO_NUMBER,
) -> Event:
    city, state, country = place
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "ringing",
        "Direction": direction,
        "From": caller,
        "To": to,
        "Caller": caller,
        "Called": to,
        "FromCity": city,
        "FromState": state,
        "FromZip": "10001",
        "FromCountry": country,
        "CallerCity": city,
        "CallerState": state,
        "CallerCountry": country,
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
    number: str = TWILIO_NUMBER,
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
            "phoneNumber": number,
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


def recording_stored(sid: str, base: datetime, recording_sid: str, offset: float = 90) -> Event:
    """The recordings service stored `recording_sid`; its id derives from the sid."""
    return Event(
        type="recording.stored",
        source="recordings",
        id=delivery_id("recording.stored", {"RecordingSid": recording_sid}),
        occurredAt=at(base, offset),
        callSid=sid,
        data={
            "recordingSid": recording_sid,
            "callSid": sid,
            "clientId": None,
            "durationSec": 40,
            "channels": 1,
            "bytes": 64000,
            "sha256": "0" * 64,
            "format": "wav",
            "recordedAt": at(base, 60),
            "twilioCopyDeleted": False,
        },
    )


def recording_deleted(sid: str, base: datetime, recording_sid: str, offset: float = 3600) -> Event:
    return Event(
        type="recording.deleted",
        source="recordings",
        id=delivery_id("recording.deleted", {"RecordingSid": recording_sid}),
        occurredAt=at(base, offset),
        callSid=sid,
        data={
            "recordingSid": recording_sid,
            "callSid": sid,
            "clientId": None,
            "reason": "request",
            "deletedBy": "admin",
            "twilioCopyDeleted": True,
        },
    )


def answered_call(
    sid: str,
    base: datetime,
    client_id: str = "client-1",
    talk: int = 42,
    caller: str = "+12125550123",
    campaign: str | None = "spring",
    place: tuple[str, str, str] = NEW_YORK,
) -> list[Event]:
    """Forwarded, the client picks up after 8 s of ringing and talks `talk` s."""
    ringing = 8
    return [
        received(sid, base, caller=caller, place=place),
        routed(sid, base, client_id, campaign=campaign),
        child_status(sid, base, "ringing", None, 3, 1),
        child_status(sid, base, "in-progress", None, 3 + ringing, 2),
        child_status(sid, base, "completed", talk, 3 + ringing + talk, 3),
        dial_completed(sid, base, "completed", talk, 3 + ringing + talk + 0.2, bridged="true"),
        parent_status(sid, base, "completed", 3 + ringing + talk + 1, 3 + ringing + talk + 1),
        recording(sid, base),
    ]


def missed_call(
    sid: str,
    base: datetime,
    client_id: str = "client-1",
    caller: str = "+12125550123",
    campaign: str | None = "spring",
    place: tuple[str, str, str] = NEW_YORK,
) -> list[Event]:
    """Forwarded, the client's phone rings out; Twilio answered the parent, so it completed."""
    return [
        received(sid, base, caller=caller, place=place),
        routed(sid, base, client_id, campaign=campaign),
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


def fallback_call(
    sid: str,
    base: datetime,
    caller: str = "+12125550123",
    place: tuple[str, str, str] = NEW_YORK,
    to: str = TWILIO_NUMBER,
) -> list[Event]:
    """Router did not answer in time; ingress served the fallback TwiML."""
    return [
        received(sid, base, caller=caller, place=place, to=to),
        fallback(sid, base),
        parent_status(sid, base, "completed", 9, 9),
    ]


def placed(
    sid: str,
    base: datetime,
    client_id: str = "client-1",
    to: str = "+13105550177",
    campaign: str | None = None,
    recording: bool = False,
) -> Event:
    """Router placed an outbound call (POST /api/twilio/make-call)."""
    return Event(
        type="call.placed",
        source="router",
        id=delivery_id("call.placed", {"CallSid": sid}),
        occurredAt=at(base, 0),
        callSid=sid,
        clientId=client_id,
        data={
            "fromNumber": TWILIO_NUMBER,
            "toNumber": to,
            "clientId": client_id,
            "direction": "outbound",
            "recording": recording,
            "campaign": campaign,
        },
    )


def outbound_status(
    sid: str,
    base: datetime,
    status: str,
    duration: int | None,
    offset: float,
    to: str = "+13105550177",
    seq: int = 0,
) -> Event:
    """A status callback of an outbound call: its own (parent) leg, Direction outbound-api."""
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": TWILIO_NUMBER,
        "To": to,
        "ToCity": "LOS ANGELES",
        "ToState": "CA",
        "ToCountry": "US",
        "FromCity": "SAN FRANCISCO",
        "FromState": "CA",
        "FromCountry": "US",
        "SequenceNumber": str(seq),
    }
    if duration is not None:
        params["CallDuration"] = str(duration)
    return webhook("status", "call.status-reported", sid, params, at(base, offset))


def outbound_call(
    sid: str,
    base: datetime,
    client_id: str = "client-1",
    to: str = "+13105550177",
    talk: int | None = 60,
    status: str = "completed",
    campaign: str | None = None,
) -> list[Event]:
    """An outbound call: placed, ringing, then its final status (talk time as CallDuration)."""
    return [
        placed(sid, base, client_id, to=to, campaign=campaign),
        outbound_status(sid, base, "ringing", None, 1, to=to, seq=1),
        outbound_status(sid, base, status, talk, 5 + (talk or 20), to=to, seq=2),
    ]


def number_assigned(
    number: str,
    client_id: str,
    campaign: str | None,
    assigned_at: datetime,
    occurred: datetime | None = None,
) -> Event:
    return Event(
        type="number.assigned",
        source="router",
        occurredAt=at(occurred or assigned_at, 0),
        clientId=client_id,
        data={
            "phoneNumber": number,
            "clientId": client_id,
            "campaign": campaign,
            "forwardTo": CLIENT_PHONE,
            "recording": True,
            "assignedAt": at(assigned_at, 0),
        },
    )


def number_released(
    number: str,
    client_id: str,
    campaign: str | None,
    assigned_at: datetime,
    released_at: datetime,
) -> Event:
    return Event(
        type="number.released",
        source="router",
        occurredAt=at(released_at, 0),
        clientId=client_id,
        data={
            "phoneNumber": number,
            "clientId": client_id,
            "campaign": campaign,
            "assignedAt": at(assigned_at, 0),
            "releasedAt": at(released_at, 0),
        },
    )


def settings_changed(
    client_id: str,
    timezone: str = "UTC",
    occurred: datetime | None = None,
    **extra: object,
) -> Event:
    """client.settings-changed as router publishes it, with analytics' fields in `extra`."""
    return Event(
        type="client.settings-changed",
        source="router",
        occurredAt=at(occurred or datetime(2024, 1, 1, tzinfo=UTC), 0),
        clientId=client_id,
        data={
            "clientId": client_id,
            "recordingEnabled": True,
            "retentionDays": None,
            "deleteFromTwilio": False,
            "recordingDisclaimer": None,
            "name": f"Client {client_id}",
            "timezone": timezone,
            "deleted": False,
            **extra,
        },
    )
