"""Whether a missed call gets a text-back, and with what (pure).

A call that ends missed (no-answer, busy, failed, canceled) or in voicemail
earns its caller one SMS from the number they called, with the message of
that number's flow (`textBack`), unless: the number has no text-back, the
caller's number is withheld or cannot take a text (not a valid E.164 number
that `phonenumbers` sees as mobile), the call is older than the age limit (a
backlog replayed after an outage must not text people days later), the
caller opted out of texts from that number (replied STOP), or the caller was
already texted from that number within the cooldown. `decide` weighs exactly
this; the ledger supplies what it remembers (`History`) and applies the
result, so a redelivered alert is answered from the ledger, never re-decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import phonenumbers
from phonenumbers import PhoneNumberType

from services.reporting.alerts import MISSED_OUTCOMES, MissedCall, TextBackSetting

# How Twilio presents a withheld caller: the word itself, and the keypad forms of
# ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN and UNAVAILABLE it puts in `From`.
WITHHELD = frozenset(
    {
        "",
        "anonymous",
        "restricted",
        "private",
        "blocked",
        "unknown",
        "unavailable",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
        "+86282452253",
    }
)
TEXTABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

SkipReason = Literal[
    "not-missed",
    "no-text-back",
    "withheld",
    "not-mobile",
    "too-old",
    "opted-out",
    "cooldown",
]


@dataclass(frozen=True)
class History:
    """What the ledger knows of this caller and number when the call is weighed."""

    opted_out: bool = False
    last_texted_at: datetime | None = None


@dataclass(frozen=True)
class Send:
    to: str
    from_: str
    body: str


@dataclass(frozen=True)
class Skip:
    reason: SkipReason


Decision = Send | Skip


def is_withheld(caller: str) -> bool:
    return caller.strip().lower() in WITHHELD


def is_textable(caller: str) -> bool:
    """Whether `caller` is an E.164 number that can receive a text (mobile, or may be)."""
    if not caller.startswith("+") or not caller[1:].isdigit():
        return False
    try:
        parsed = phonenumbers.parse(caller, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and (
        phonenumbers.number_type(parsed) in TEXTABLE_TYPES
    )


def decide(
    call: MissedCall,
    setting: TextBackSetting | None,
    history: History,
    now: datetime,
    max_age: timedelta,
) -> Decision:
    """Send the number's text to the caller, or skip with the first reason that holds."""
    if call.outcome not in MISSED_OUTCOMES:
        return Skip("not-missed")
    if setting is None:
        return Skip("no-text-back")
    if is_withheld(call.caller_number):
        return Skip("withheld")
    if not is_textable(call.caller_number):
        return Skip("not-mobile")
    if now - call.called_at > max_age:
        return Skip("too-old")
    if history.opted_out:
        return Skip("opted-out")
    cooldown = timedelta(hours=setting.cooldown_hours)
    if history.last_texted_at is not None and now - history.last_texted_at < cooldown:
        return Skip("cooldown")
    return Send(to=call.caller_number, from_=call.called_number, body=setting.message)
