"""Realistic event sequences of whole calls, built by their producers' own builders.

Every event comes from the function its producer publishes with: ingress's
`to_event` / `fallback_event` for webhooks, router's routing and facts
builders for routing, numbers, clients and outbound calls, the recordings
service's announcements for recordings. A script only chooses the inputs
and when each event happened (`occurredAt`), so a field a producer stops or
starts sending shows up here too (tests/kernel/test_no_hand_built_events.py
keeps it so). Webhook events get deterministic ids, so a script built twice
yields the same events, as Twilio retries would.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.ingress.webhooks import WEBHOOKS, fallback_event, to_event
from services.recordings.announcements import deleted_event, stored_event
from services.router import facts
from services.router.directory import Client, ClientSettings, NumberAssignment
from services.router.routing import decide, routed_event
from switchboard.events import Event

ACCOUNT = "AC00000000000000000000000000000001"
TWILIO_NUMBER = "+14155550100"
CLIENT_PHONE = "+14155550199"


def at(base: datetime, seconds: float) -> str:
    moment = base + timedelta(seconds=seconds)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def happened(event: Event, occurred: str) -> Event:
    """The producer's event, as if it had been produced at `occurred`."""
    return replace(event, occurredAt=occurred)


def with_data(event: Event, **changes: object) -> Event:
    """The producer's event with some values replaced, for tests of values it would not send.

    Only fields the producer sends may change, so such a test still follows
    the producer's shape.
    """
    unknown = sorted(set(changes) - set(event.data))
    assert not unknown, f"{event.type} from its producer has no {unknown}"
    return replace(event, data={**event.data, **changes})


def webhook(kind: str, params: dict[str, str], occurred: str) -> Event:
    """What ingress publishes for Twilio's `kind` webhook (voice, status, ...)."""
    url = f"https://example.test/api/twilio/{kind}"
    return happened(to_event(WEBHOOKS[kind], params, url, None), occurred)


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
    return webhook("voice", params, at(base, 0))


def routed(
    sid: str,
    base: datetime,
    client_id: str | None = "client-1",
    disposition: str = "forwarded",
    recording: bool = True,
    campaign: str | None = "spring",
    number: str = TWILIO_NUMBER,
) -> Event:
    """Router's decision for the call: forwarded to the client's phone, or unassigned."""
    owner = None
    if disposition == "forwarded":
        assert client_id is not None, "a forwarded call has a client"
        owner = assignment(number, client_id, campaign, base, recording)
    return happened(routed_event(decide(number, owner), sid, None), at(base, 0.05))


def fallback(sid: str, base: datetime) -> Event:
    params = {"CallSid": sid, "To": TWILIO_NUMBER}
    return happened(fallback_event(params, "router timed out", None), at(base, 1.5))


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
    return webhook("status", params, at(base, offset))


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
    return webhook("dial-status", params, at(base, offset))


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
    return webhook("status", params, at(base, offset))


def recording(
    sid: str,
    base: datetime,
    status: str = "completed",
    source: str = "DialVerb",
    duration: int = 40,
    offset: float = 60,
) -> Event:
    """Twilio's recording status callback; RecordVerb is a voicemail (<Record>)."""
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "RecordingSid": f"RE{sid[2:]}",
        "RecordingStatus": status,
        "RecordingDuration": str(duration),
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{sid[2:]}",
        "RecordingSource": source,
    }
    return webhook("recording-status", params, at(base, offset))


def recording_stored(sid: str, base: datetime, recording_sid: str, offset: float = 90) -> Event:
    """The recordings service stored `recording_sid`; its id derives from the sid."""
    event = stored_event(
        recording_sid, sid, None, 40, 1, 64000, "0" * 64, "wav", at(base, 60), False
    )
    return happened(event, at(base, offset))


def recording_deleted(sid: str, base: datetime, recording_sid: str, offset: float = 3600) -> Event:
    event = deleted_event(recording_sid, sid, None, "request", "admin", True)
    return happened(event, at(base, offset))


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


def voicemail_call(
    sid: str,
    base: datetime,
    client_id: str = "client-1",
    message: int = 12,
    caller: str = "+12125550123",
) -> list[Event]:
    """Forwarded, nobody answers, the caller leaves a `message`-second voicemail."""
    return [
        *missed_call(sid, base, client_id, caller=caller)[:-1],
        recording(sid, base, source="RecordVerb", duration=message, offset=33.2 + 5 + message),
        parent_status(sid, base, "completed", 33.2 + 6 + message, 33.2 + 6 + message),
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
    event = facts.call_placed(sid, client_id, TWILIO_NUMBER, to, recording, campaign)
    return happened(event, at(base, 0))


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
    return webhook("status", params, at(base, offset))


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


def assignment(
    number: str,
    client_id: str,
    campaign: str | None,
    assigned_at: datetime,
    record: bool = True,
) -> NumberAssignment:
    """A number of the client, forwarding to its phone, as router's directory holds it."""
    return NumberAssignment(number, client_id, CLIENT_PHONE, record, None, campaign, assigned_at)


def number_assigned(
    number: str,
    client_id: str,
    campaign: str | None,
    assigned_at: datetime,
    occurred: datetime | None = None,
) -> Event:
    event = facts.number_assigned(assignment(number, client_id, campaign, assigned_at))
    return happened(event, at(occurred or assigned_at, 0))


def number_released(
    number: str,
    client_id: str,
    campaign: str | None,
    assigned_at: datetime,
    released_at: datetime,
) -> Event:
    event = facts.number_released(
        assignment(number, client_id, campaign, assigned_at), released_at
    )
    return happened(event, at(released_at, 0))


def settings_changed(
    client_id: str,
    timezone: str = "UTC",
    occurred: datetime | None = None,
    **extra: object,
) -> Event:
    """client.settings-changed as router publishes it; `extra` are settings in router's API
    (valuePerConversion, leadThresholds, ...), validated as router's API validates them."""
    moment = occurred or datetime(2024, 1, 1, tzinfo=UTC)
    settings = ClientSettings(name=f"Client {client_id}", recording_disclaimer=None).patched(
        {"timezone": timezone, **extra}
    )
    event = facts.client_settings_changed(Client(client_id, settings, moment, moment))
    return happened(event, at(moment, 0))
