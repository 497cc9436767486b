"""The `alert.missed-call` event: what one missed call tells its client (pure).

`missed_call_alert` is the builder every producer and test uses. The event id
is derived from the CallSid, so a call alerted twice (a redelivered event, a
restart before the offset was committed) yields the same id and every
consumer sees a duplicate. The alert carries what a person needs to call
back: who called, which number, when (in UTC and in the client's zone), why
it was missed, and the voicemail's link when the caller left one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from switchboard.events import Event

SOURCE = "reporting"
ALERT_TYPE = "alert.missed-call"
MISSED_OUTCOMES = ("no-answer", "busy", "failed", "canceled", "voicemail")
DEFAULT_TIMEZONE = "UTC"
_ALERT_NAMESPACE = uuid.UUID("3c0d2a44-1f5e-4b8a-9e1c-7a2b5d6e8f90")


def alerts_topic(prefix: str) -> str:
    """The topic alerts travel on (keyed by CallSid), under KAFKA_TOPIC_PREFIX."""
    return f"{prefix}alert-events"


@dataclass(frozen=True)
class Voicemail:
    recording_sid: str
    duration_sec: int
    playback_url: str | None = None
    expires_at: str | None = None

    def to_json(self, call_sid: str) -> dict[str, Any]:
        return {
            "recordingSid": self.recording_sid,
            "durationSec": self.duration_sec,
            "playbackUrl": self.playback_url,
            "expiresAt": self.expires_at,
            "recordingUrl": f"/api/twilio/recording/{call_sid}",
        }


@dataclass(frozen=True)
class TextBackSetting:
    """A number's `textBack` flow part: the text and how long before a caller gets another."""

    message: str
    cooldown_hours: int

    @classmethod
    def from_flow(cls, flow: object) -> TextBackSetting | None:
        """The setting in a flow's JSON (call.routed, number.assigned), None when it has none."""
        if not isinstance(flow, dict):
            return None
        part: Any = flow.get("textBack")
        if not isinstance(part, dict):
            return None
        message = part.get("message")
        hours = part.get("cooldownHours", 24)
        if not isinstance(message, str) or not message.strip():
            return None
        if not isinstance(hours, int) or isinstance(hours, bool) or hours < 0:
            return None
        return cls(message, hours)

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "cooldownHours": self.cooldown_hours}


@dataclass(frozen=True)
class MissedCall:
    call_sid: str
    client_id: str
    called_number: str
    caller_number: str
    outcome: str
    called_at: datetime
    client_name: str = ""
    timezone: str = DEFAULT_TIMEZONE
    campaign: str | None = None
    voicemail: Voicemail | None = None
    # The text-back of the flow the call was routed with. `carries_text_back` is
    # False for an alert from before alerts carried it: the ledger's setting counts.
    text_back: TextBackSetting | None = None
    carries_text_back: bool = True


def alert_id(call_sid: str) -> str:
    """The one id every alert of `call_sid` gets."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{ALERT_TYPE}\n{call_sid}"))


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or UTC when it is empty or unknown."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def missed_call_alert(call: MissedCall, occurred_at: datetime | None = None) -> Event:
    """The alert of one missed call (ValueError for an outcome that is not a missed one)."""
    if call.outcome not in MISSED_OUTCOMES:
        raise ValueError(f"outcome {call.outcome!r} is not a missed call")
    tz = zone(call.timezone)
    local = call.called_at.astimezone(tz)
    data: dict[str, Any] = {
        "callSid": call.call_sid,
        "clientId": call.client_id,
        "clientName": call.client_name,
        "calledNumber": call.called_number,
        "callerNumber": call.caller_number,
        "outcome": call.outcome,
        "calledAt": iso_utc(call.called_at),
        "calledAtLocal": local.isoformat(timespec="seconds"),
        "timezone": tz.key,
        "campaign": call.campaign,
        "voicemail": call.voicemail.to_json(call.call_sid) if call.voicemail else None,
        "textBack": call.text_back.to_json() if call.text_back else None,
    }
    return Event(
        type=ALERT_TYPE,
        source=SOURCE,
        data=data,
        id=alert_id(call.call_sid),
        occurredAt=iso_utc(occurred_at or datetime.now(UTC)),
        callSid=call.call_sid,
        clientId=call.client_id,
    )


def missed_call_of(event: Event) -> MissedCall:
    """The MissedCall an alert event describes (for its consumers)."""
    data = event.data
    voicemail = data.get("voicemail")
    return MissedCall(
        call_sid=data["callSid"],
        client_id=data["clientId"],
        called_number=data["calledNumber"],
        caller_number=data["callerNumber"],
        outcome=data["outcome"],
        called_at=datetime.fromisoformat(data["calledAt"].replace("Z", "+00:00")),
        client_name=data.get("clientName", ""),
        timezone=data.get("timezone", DEFAULT_TIMEZONE),
        campaign=data.get("campaign"),
        voicemail=(
            Voicemail(
                voicemail["recordingSid"],
                int(voicemail["durationSec"]),
                voicemail.get("playbackUrl"),
                voicemail.get("expiresAt"),
            )
            if voicemail
            else None
        ),
        text_back=TextBackSetting.from_flow(data),
        carries_text_back="textBack" in data,
    )
