"""What a call to a tracked number does: its call flow, and the routing decision (pure).

Router owns numbers and their flows and validates every flow it is given
(services/router/flows.py); the model here is what routing needs at call
time, shared so that ingress can route from its own copy of the number
events while router is down, exactly as router would. `Flow.read` reads a
flow as router publishes it (`to_json`, the shape of GET .../flow and of
`number.assigned`), trusting its producer. `decide` turns a number's routing
(or none) into a `RoutingDecision` at a moment the caller passes in, and
`routed_event` is the `call.routed` fact it leaves behind.

Business hours are in the client's time zone and evaluated with zoneinfo,
so a day that gains or loses an hour at a DST change still opens and closes
at the wall-clock times given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from switchboard.events import Event, delivery_id

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_TARGETS = 10
MAX_SAY = 1000
DEFAULT_TIMEOUT_SEC = 20
DEFAULT_VOICEMAIL_SEC = 120
DEFAULT_COOLDOWN_HOURS = 24
DEFAULT_GREETING = (
    "Sorry, we cannot take your call right now. Please leave a message after the tone."
)
# Characters XML (hence TwiML) cannot carry, and lone surrogates no encoder accepts.
UNSAFE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Strategy = Literal["simultaneous", "sequential"]
AfterHours = Literal["voicemail", "forward"]
Disposition = Literal["forwarded", "unassigned"]
# (start, end) in minutes since midnight, start < end <= 1440.
Range = tuple[int, int]


class UnreadableFlow(ValueError):
    """A published flow that does not have the shape `Flow.to_json` writes."""


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def minutes(text: str) -> int:
    hours, _, mins = text.partition(":")
    return int(hours) * 60 + int(mins)


@dataclass(frozen=True)
class BusinessHours:
    """Open ranges per weekday (Monday first) and whole closed dates; a day not given is closed."""

    weekly: tuple[tuple[Range, ...], ...]
    closed_dates: frozenset[date] = frozenset()

    def is_open(self, moment: datetime, timezone: str) -> bool:
        """Whether the business is open at `moment` (aware) in the client's `timezone`."""
        local = moment.astimezone(ZoneInfo(timezone))
        if local.date() in self.closed_dates:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly[local.weekday()])

    def to_json(self) -> dict[str, Any]:
        return {
            "weekly": {
                day: [[clock(start), clock(end)] for start, end in ranges]
                for day, ranges in zip(DAYS, self.weekly, strict=True)
                if ranges
            },
            "closedDates": sorted(d.isoformat() for d in self.closed_dates),
        }

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> BusinessHours:
        weekly = data.get("weekly") or {}
        return cls(
            tuple(
                tuple((minutes(start), minutes(end)) for start, end in weekly.get(day, []))
                for day in DAYS
            ),
            frozenset(date.fromisoformat(d) for d in data.get("closedDates") or []),
        )


@dataclass(frozen=True)
class RingTarget:
    number: str
    timeout_sec: int = DEFAULT_TIMEOUT_SEC

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "timeoutSec": self.timeout_sec}


@dataclass(frozen=True)
class Ring:
    strategy: Strategy
    targets: tuple[RingTarget, ...]

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "targets": [t.to_json() for t in self.targets]}

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Ring:
        strategy = data.get("strategy", "simultaneous")
        if strategy not in ("simultaneous", "sequential"):
            raise UnreadableFlow(f"unknown ring strategy {strategy!r}")
        targets = tuple(
            RingTarget(str(t["number"]), int(t.get("timeoutSec", DEFAULT_TIMEOUT_SEC)))
            for t in data["targets"]
        )
        if not targets:
            raise UnreadableFlow("a ring without targets")
        return cls(strategy, targets)


@dataclass(frozen=True)
class Voicemail:
    greeting: str = DEFAULT_GREETING
    max_length_sec: int = DEFAULT_VOICEMAIL_SEC

    def to_json(self) -> dict[str, Any]:
        return {"greeting": self.greeting, "maxLengthSec": self.max_length_sec}


@dataclass(frozen=True)
class TextBack:
    message: str
    cooldown_hours: int = DEFAULT_COOLDOWN_HOURS

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "cooldownHours": self.cooldown_hours}


@dataclass(frozen=True)
class Flow:
    """Every part is optional; a flow with none of them is no flow at all.

    Without business hours the number is always in hours; without `ring` it
    rings the number's own forwardTo; without `afterHours` a call nobody
    takes goes to voicemail.
    """

    business_hours: BusinessHours | None = None
    ring: Ring | None = None
    whisper: str | None = None
    screening: bool = False
    after_hours: AfterHours = "voicemail"
    after_hours_number: str | None = None
    voicemail: Voicemail = field(default_factory=Voicemail)
    text_back: TextBack | None = None

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Flow:
        """A flow as `to_json` wrote it (absent parts: defaults); UnreadableFlow if not one."""
        try:
            hours, ring = data.get("businessHours"), data.get("ring")
            voicemail = data.get("voicemail") or {}
            text_back = data.get("textBack")
            after_hours: AfterHours = data.get("afterHours") or "voicemail"
            if after_hours not in ("voicemail", "forward"):
                raise UnreadableFlow(f"unknown afterHours {after_hours!r}")
            return cls(
                business_hours=BusinessHours.read(hours) if hours else None,
                ring=Ring.read(ring) if ring else None,
                whisper=data.get("whisper") or None,
                screening=bool(data.get("screening", False)),
                after_hours=after_hours,
                after_hours_number=data.get("afterHoursNumber") or None,
                voicemail=Voicemail(
                    str(voicemail.get("greeting") or DEFAULT_GREETING),
                    int(voicemail.get("maxLengthSec", DEFAULT_VOICEMAIL_SEC)),
                ),
                text_back=(
                    TextBack(
                        str(text_back["message"]),
                        int(text_back.get("cooldownHours", DEFAULT_COOLDOWN_HOURS)),
                    )
                    if text_back
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            if isinstance(err, UnreadableFlow):
                raise
            raise UnreadableFlow(f"not a call flow: {err!r}") from None

    @property
    def is_empty(self) -> bool:
        return self == type(self)()

    def is_open(self, moment: datetime, timezone: str) -> bool:
        return self.business_hours is None or self.business_hours.is_open(moment, timezone)

    def numbers(self) -> list[str]:
        """Every number this flow may dial."""
        dialed = [t.number for t in self.ring.targets] if self.ring else []
        return dialed + ([self.after_hours_number] if self.after_hours_number else [])

    def to_json(self) -> dict[str, Any]:
        return {
            "businessHours": self.business_hours.to_json() if self.business_hours else None,
            "ring": self.ring.to_json() if self.ring else None,
            "whisper": self.whisper,
            "screening": self.screening,
            "afterHours": self.after_hours,
            "afterHoursNumber": self.after_hours_number,
            "voicemail": self.voicemail.to_json(),
            "textBack": self.text_back.to_json() if self.text_back else None,
        }


class Routing(Protocol):
    """What routing needs of an assigned number: its own settings over its client's.

    Router's assignments and ingress's copy of the number events both are one.
    """

    @property
    def client_id(self) -> str: ...
    @property
    def forward_to(self) -> str: ...
    @property
    def record(self) -> bool: ...
    @property
    def recording_disclaimer(self) -> str | None: ...
    @property
    def campaign(self) -> str | None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def flow(self) -> Flow | None: ...


@dataclass(frozen=True)
class RoutingDecision:
    phone_number: str
    disposition: Disposition
    client_id: str | None = None
    forward_to: str | None = None
    record: bool = False
    recording_disclaimer: str | None = None
    campaign: str | None = None
    # None: forwarded to forward_to as before flows existed.
    flow: Flow | None = None
    in_hours: bool = True

    def event_data(self) -> dict[str, Any]:
        return {
            "phoneNumber": self.phone_number,
            "disposition": self.disposition,
            "clientId": self.client_id,
            "forwardTo": self.forward_to,
            "recording": self.record,
            "campaign": self.campaign,
            # The flow the call was routed with, so consumers judge the call by it
            # rather than by whatever the number's latest event says when they get there.
            "flow": self.flow.to_json() if self.flow else None,
            "inHours": self.in_hours,
        }


def decide(phone_number: str, routing: Routing | None, now: datetime) -> RoutingDecision:
    """The decision for a call to `phone_number` at `now` (aware), given its routing or None."""
    if routing is None:
        return RoutingDecision(phone_number=phone_number, disposition="unassigned")
    flow = routing.flow
    return RoutingDecision(
        phone_number=phone_number,
        disposition="forwarded",
        client_id=routing.client_id,
        forward_to=routing.forward_to,
        record=routing.record,
        recording_disclaimer=routing.recording_disclaimer,
        campaign=routing.campaign,
        flow=flow,
        in_hours=flow is None or flow.is_open(now, routing.timezone),
    )


def routed_event(
    decision: RoutingDecision, call_sid: str, request_id: str | None, source: str
) -> Event:
    """The `call.routed` event for a decision, as `source` (router, or ingress from its copy).

    Its id is derived from the CallSid, so when Twilio retries the voice
    webhook, or both router and ingress answered the call, consumers see a
    duplicate.
    """
    return Event(
        type="call.routed",
        source=source,
        data=decision.event_data(),
        id=delivery_id("call.routed", {"CallSid": call_sid}),
        callSid=call_sid,
        clientId=decision.client_id,
        requestId=request_id or None,
    )
