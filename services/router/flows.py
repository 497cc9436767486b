"""A number's call flow as router takes it in: the validation of `PUT .../flow` (pure).

A flow is what `PUT /api/numbers/<phoneNumber>/flow` stores and what the
routing decision follows when a number has one; a number without a flow is
routed as it always was. The model and what a call does with it are the
kernel's (switchboard/callflow.py), shared with ingress, which routes from
its copy of the number events while router is down. `Flow.parse` either
yields a flow the store can write as is, or raises `ApiError(400)` naming
the field and the reason, so a half-valid flow never reaches the database.
Every number in a flow (ring targets, the after-hours number) passes the
same `DialPolicy` as any other number router dials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from services.router.dialing import DialPolicy
from services.router.directory import invalid, parse_e164
from switchboard import callflow
from switchboard.callflow import (
    DAYS,
    DEFAULT_COOLDOWN_HOURS,
    DEFAULT_GREETING,
    DEFAULT_TIMEOUT_SEC,
    DEFAULT_VOICEMAIL_SEC,
    MAX_SAY,
    MAX_TARGETS,
    UNSAFE_TEXT,
    BusinessHours,
    Range,
    Ring,
    RingTarget,
    TextBack,
    Voicemail,
    clock,
)
from switchboard.http import ApiError

# HH:MM on a 24-hour clock; 24:00 only closes a range that runs to midnight.
CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
MAX_RANGES_PER_DAY = 10
MAX_CLOSED_DATES = 366
# Twilio's <Dial timeout> takes 5 to 600 seconds.
MIN_TIMEOUT_SEC = 5
MAX_TIMEOUT_SEC = 600
# Twilio's <Record maxLength> default is an hour; a voicemail is shorter.
MAX_VOICEMAIL_SEC = 3600
# One SMS body may span segments; ten of them is plenty for a text-back.
MAX_TEXT_BACK = 1600
MAX_COOLDOWN_HOURS = 24 * 30

FLOW_FIELDS = (
    "businessHours",
    "ring",
    "whisper",
    "screening",
    "afterHours",
    "afterHoursNumber",
    "voicemail",
    "textBack",
)


class Flow(callflow.Flow):
    """The kernel's call flow, as router takes it in from its API and its database."""

    @classmethod
    def parse(cls, body: object, phone_number: str, policy: DialPolicy) -> Flow:
        """The flow in a request body for `phone_number`, or ApiError(400) with field and reason."""
        values = _object(body, "flow", FLOW_FIELDS)
        flow = cls(
            business_hours=_business_hours(values.get("businessHours")),
            ring=_ring(values.get("ring"), phone_number, policy),
            whisper=_text(values.get("whisper"), "whisper", MAX_SAY),
            screening=_bool(values.get("screening", False), "screening"),
            after_hours=_choice(
                values.get("afterHours", "voicemail"), "afterHours", ("voicemail", "forward")
            ),
            after_hours_number=_dialable(
                values.get("afterHoursNumber"), "afterHoursNumber", phone_number, policy
            ),
            voicemail=_voicemail(values.get("voicemail")),
            text_back=_text_back(values.get("textBack")),
        )
        if flow.after_hours == "forward" and flow.after_hours_number is None:
            raise invalid("afterHoursNumber", 'is required when afterHours is "forward"')
        return flow

    @classmethod
    def from_json(cls, stored: dict[str, Any], phone_number: str) -> Flow:
        """A flow as stored; it was valid when written, so no dial policy is applied again."""
        return cls.parse(stored, phone_number, _ANY_COUNTRY)


class _AnyCountry(DialPolicy):
    def refusal(self, number: str) -> str | None:
        return None


_ANY_COUNTRY = _AnyCountry()


# ---- parts: raw JSON value -> value, or ApiError(400) naming the field


def _object(value: object, name: str, known: Iterable[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(name, "must be an object")
    unknown = sorted(set(value) - set(known))
    if unknown:
        where = "" if name == "flow" else f"{name}."
        raise ApiError(
            400,
            "unknown_field",
            f"unknown field(s): {', '.join(where + u for u in unknown)}",
        )
    # null means "not given", as in the GET answer.
    return {k: v for k, v in value.items() if v is not None}


def _business_hours(value: object) -> BusinessHours | None:
    if value is None:
        return None
    values = _object(value, "businessHours", ("weekly", "closedDates"))
    weekly_raw = _object(values.get("weekly", {}), "businessHours.weekly", DAYS)
    weekly = tuple(_day(weekly_raw.get(day, []), f"businessHours.weekly.{day}") for day in DAYS)
    closed = values.get("closedDates", [])
    if not isinstance(closed, list):
        raise invalid("businessHours.closedDates", "must be a list of dates (YYYY-MM-DD)")
    if len(closed) > MAX_CLOSED_DATES:
        raise invalid("businessHours.closedDates", f"must hold at most {MAX_CLOSED_DATES} dates")
    dates = frozenset(_date(raw, f"businessHours.closedDates[{i}]") for i, raw in enumerate(closed))
    return BusinessHours(weekly, dates)


def _day(value: object, name: str) -> tuple[Range, ...]:
    if not isinstance(value, list):
        raise invalid(name, 'must be a list of ["HH:MM", "HH:MM"] ranges')
    if len(value) > MAX_RANGES_PER_DAY:
        raise invalid(name, f"must hold at most {MAX_RANGES_PER_DAY} ranges")
    ranges: list[Range] = []
    for i, pair in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise invalid(where, 'must be a ["HH:MM", "HH:MM"] pair')
        start, end = _clock(pair[0], f"{where}[0]"), _clock(pair[1], f"{where}[1]")
        if start == 24 * 60:
            raise invalid(f"{where}[0]", "must be from 00:00 to 23:59")
        if end <= start:
            raise invalid(
                where, "must end after it starts (a range past midnight is two days' ranges)"
            )
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        if start < end:
            raise invalid(
                name, f"has overlapping ranges (one starts at {clock(start)}, before {clock(end)})"
            )
    return tuple(ranges)


def _clock(value: object, name: str) -> int:
    if not isinstance(value, str):
        raise invalid(name, "must be a time HH:MM")
    match = CLOCK.fullmatch(value)
    if match is None:
        raise invalid(name, f"must be a time from 00:00 to 24:00 (HH:MM), got {value!r}")
    if value == "24:00":
        return 24 * 60
    return int(match.group(1)) * 60 + int(match.group(2))


def _date(value: object, name: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise invalid(name, f"must be a date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(name, f"is not a calendar date: {value!r}") from None


def _ring(value: object, phone_number: str, policy: DialPolicy) -> Ring | None:
    if value is None:
        return None
    values = _object(value, "ring", ("strategy", "targets"))
    strategy = _choice(
        values.get("strategy", "simultaneous"), "ring.strategy", ("simultaneous", "sequential")
    )
    raw_targets = values.get("targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        raise invalid("ring.targets", f"must be a list of 1 to {MAX_TARGETS} targets")
    if len(raw_targets) > MAX_TARGETS:
        raise invalid(
            "ring.targets", f"must hold at most {MAX_TARGETS} targets, got {len(raw_targets)}"
        )
    targets: list[RingTarget] = []
    for i, raw in enumerate(raw_targets):
        where = f"ring.targets[{i}]"
        target = _object(raw, where, ("number", "timeoutSec"))
        if "number" not in target:
            raise invalid(f"{where}.number", "is required")
        number = _dialable(target["number"], f"{where}.number", phone_number, policy)
        assert number is not None
        if any(t.number == number for t in targets):
            raise invalid(f"{where}.number", f"{number} is already a target")
        timeout = _whole(
            target.get("timeoutSec", DEFAULT_TIMEOUT_SEC),
            f"{where}.timeoutSec",
            MIN_TIMEOUT_SEC,
            MAX_TIMEOUT_SEC,
        )
        targets.append(RingTarget(number, timeout))
    return Ring(strategy, tuple(targets))


def _dialable(value: object, name: str, phone_number: str, policy: DialPolicy) -> str | None:
    if value is None:
        return None
    number = parse_e164(name, value)
    if number == phone_number:
        raise invalid(name, "must differ from the number itself (a call loop)")
    policy.check(name, number)
    return number


def _voicemail(value: object) -> Voicemail:
    if value is None:
        return Voicemail()
    values = _object(value, "voicemail", ("greeting", "maxLengthSec"))
    return Voicemail(
        greeting=_text(values.get("greeting"), "voicemail.greeting", MAX_SAY) or DEFAULT_GREETING,
        max_length_sec=_whole(
            values.get("maxLengthSec", DEFAULT_VOICEMAIL_SEC),
            "voicemail.maxLengthSec",
            1,
            MAX_VOICEMAIL_SEC,
        ),
    )


def _text_back(value: object) -> TextBack | None:
    if value is None:
        return None
    values = _object(value, "textBack", ("message", "cooldownHours"))
    message = _text(values.get("message"), "textBack.message", MAX_TEXT_BACK)
    if message is None:
        raise invalid("textBack.message", "is required")
    return TextBack(
        message,
        _whole(
            values.get("cooldownHours", DEFAULT_COOLDOWN_HOURS),
            "textBack.cooldownHours",
            0,
            MAX_COOLDOWN_HOURS,
        ),
    )


def _text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    value = value.strip()
    if UNSAFE_TEXT.search(value):
        raise invalid(name, "must not contain control characters")
    if len(value) > limit:
        raise invalid(name, f"must be at most {limit} characters")
    return value or None


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, "must be true or false")
    return value


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "must be a whole number")
    if not low <= value <= high:
        raise invalid(name, f"must be from {low} to {high}")
    return value


def _choice(value: object, name: str, choices: tuple[str, ...]) -> Any:
    if value not in choices:
        allowed = " or ".join(f'"{c}"' for c in choices)
        raise invalid(name, f"must be {allowed}, got {value!r}")
    return value
