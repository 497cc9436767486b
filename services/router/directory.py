"""Clients and the numbers assigned to them: the entities and their rules.

`Client` and `NumberAssignment` are what the store returns and the API shows.
`ClientSettings`, `NewAssignment` and `NumberChanges` are validated request
bodies: parsing one either yields a value the store can write as is, or raises
`ApiError(400)` with the reason, so nothing half-checked ever reaches the
database. Unknown fields are refused rather than ignored: a misspelt setting
must not look as if it had been saved.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import available_timezones

from switchboard.callflow import UNSAFE_TEXT
from switchboard.http import ApiError

if TYPE_CHECKING:
    from services.router.flows import Flow

# [0-9], not \d: \d also matches digits of other scripts.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
AREA_CODE = re.compile(r"[2-9][0-9]{2}")
MAX_NAME = 200
MAX_CAMPAIGN = 200
MAX_DISCLAIMER = 1000
MAX_RETENTION_DAYS = 36500
# numeric(14,2) in PostgreSQL
MAX_MONEY = Decimal("999999999999.99")
CENT = Decimal("0.01")
# Talk-time thresholds of lead quality stay within a day.
MAX_LEAD_SECONDS = 86400
# A per-client cap of outbound calls a day; beyond this, ask for a bigger default.
MAX_DAILY_OUTBOUND_CAP = 100000
DEFAULT_DISCLAIMER = "This call may be recorded for quality and training purposes."


@dataclass(frozen=True)
class LeadThresholds:
    """A client's lead-quality talk times, in the order analytics reads them.

    Calls under `short_sec` of talk are short, `long_sec` and over are long;
    `qualified_sec` of talk makes a call a qualified lead.
    """

    short_sec: int
    long_sec: int
    qualified_sec: int

    def to_json(self) -> dict[str, int]:
        return {
            "shortSec": self.short_sec,
            "longSec": self.long_sec,
            "qualifiedSec": self.qualified_sec,
        }


@dataclass(frozen=True)
class ClientSettings:
    """Everything about a client that its owner may set.

    `lead_thresholds` None follows analytics' defaults; `daily_outbound_cap`
    None follows the router's ROUTER_DAILY_OUTBOUND_CAP.
    """

    name: str
    forward_to: str | None = None
    timezone: str = "UTC"
    recording_enabled: bool = True
    recording_disclaimer: str | None = DEFAULT_DISCLAIMER
    retention_days: int | None = None
    delete_from_twilio: bool = False
    monthly_revenue: Decimal | None = None
    value_per_conversion: Decimal | None = None
    lead_thresholds: LeadThresholds | None = None
    daily_outbound_cap: int | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ClientSettings:
        """A whole client (POST, PUT): `name` is required, the rest has defaults."""
        if "name" not in body:
            raise invalid("name", "is required")
        return cls(name="-").patched(body)

    def patched(self, body: dict[str, Any]) -> ClientSettings:
        """These settings with the fields present in `body` changed (PATCH)."""
        refuse_unknown(body, CLIENT_FIELDS)
        changes = {
            attribute: parse(field, body[field])
            for field, (attribute, parse) in CLIENT_FIELDS.items()
            if field in body
        }
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "forwardTo": self.forward_to,
            "timezone": self.timezone,
            "recordingEnabled": self.recording_enabled,
            "recordingDisclaimer": self.recording_disclaimer,
            "retentionDays": self.retention_days,
            "deleteFromTwilio": self.delete_from_twilio,
            "monthlyRevenue": money_json(self.monthly_revenue),
            "valuePerConversion": money_json(self.value_per_conversion),
            "leadThresholds": self.lead_thresholds.to_json() if self.lead_thresholds else None,
            "dailyOutboundCap": self.daily_outbound_cap,
        }

    def changed_fields(self, other: ClientSettings) -> list[str]:
        """JSON names of the settings that differ between self and `other`."""
        mine, theirs = self.to_json(), other.to_json()
        return [name for name in mine if mine[name] != theirs[name]]


@dataclass(frozen=True)
class Client:
    id: str
    settings: ClientSettings
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.settings.to_json(),
            "createdAt": iso_utc(self.created_at),
            "updatedAt": iso_utc(self.updated_at),
        }


@dataclass(frozen=True)
class NumberAssignment:
    """An assigned number as routing uses it: its own settings over its client's.

    `timezone` is the client's, in which the number's call flow (if any) keeps
    its business hours.
    """

    phone_number: str
    client_id: str
    forward_to: str
    record: bool
    recording_disclaimer: str | None
    campaign: str | None
    assigned_at: datetime
    timezone: str = "UTC"
    flow: Flow | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phoneNumber": self.phone_number,
            "clientId": self.client_id,
            "forwardTo": self.forward_to,
            "record": self.record,
            "recordingDisclaimer": self.recording_disclaimer,
            "campaign": self.campaign,
            "assignedAt": iso_utc(self.assigned_at),
        }


@dataclass(frozen=True)
class NewAssignment:
    """POST /api/clients/<id>/numbers: a given number, or one from the pool."""

    phone_number: str | None = None
    area_code: str | None = None
    forward_to: str | None = None
    record: bool | None = None
    recording_disclaimer: str | None = None
    campaign: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> NewAssignment:
        refuse_unknown(body, ASSIGNMENT_FIELDS)
        values = {
            attribute: parse(field, body[field])
            for field, (attribute, parse) in ASSIGNMENT_FIELDS.items()
            if field in body
        }
        new = cls(**values)
        if new.phone_number is not None and new.area_code is not None:
            raise invalid("areaCode", "applies only when no phoneNumber is given")
        return new

    def forward_to_for(self, client: Client, phone_number: str | None = None) -> str:
        """The phone this number rings: its own forwardTo, else the client's."""
        target = self.forward_to or client.settings.forward_to
        if target is None:
            raise invalid("forwardTo", "is required: the client has no default forwardTo")
        if target == (phone_number or self.phone_number):
            raise invalid("forwardTo", "must differ from the number itself (a call loop)")
        return target


@dataclass(frozen=True)
class NumberChanges:
    """PATCH /api/clients/<id>/numbers/<number>: only the fields given change.

    `record` and `recordingDisclaimer` set to null follow the client again.
    """

    values: dict[str, Any]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> NumberChanges:
        refuse_unknown(body, NUMBER_CHANGE_FIELDS)
        if not body:
            raise ApiError(400, "invalid_body", "nothing to change: give at least one field")
        return cls(
            {
                attribute: parse(field, body[field])
                for field, (attribute, parse) in NUMBER_CHANGE_FIELDS.items()
                if field in body
            }
        )

    def check_against(self, phone_number: str) -> None:
        if self.values.get("forward_to") == phone_number:
            raise invalid("forwardTo", "must differ from the number itself (a call loop)")


# ---- field parsers: (field name, raw JSON value) -> value, or ApiError(400)


def parse_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "must be a non-empty string")
    value = value.strip()
    if UNSAFE_TEXT.search(value):
        raise invalid(field, "must not contain control characters")
    if len(value) > MAX_NAME:
        raise invalid(field, f"must be at most {MAX_NAME} characters")
    return value


def parse_e164(field: str, value: object) -> str:
    if not isinstance(value, str) or not E164.fullmatch(value):
        raise invalid(field, f"must be an E.164 phone number such as +14155550100, got {value!r}")
    return value


def optional_e164(field: str, value: object) -> str | None:
    return None if value is None else parse_e164(field, value)


def parse_timezone(field: str, value: object) -> str:
    if value is None:
        return "UTC"
    if not isinstance(value, str) or value not in iana_zones():
        raise invalid(field, f"must be an IANA time zone such as Europe/Paris, got {value!r}")
    return value


def parse_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, "must be true or false")
    return value


def optional_bool(field: str, value: object) -> bool | None:
    return None if value is None else parse_bool(field, value)


def parse_retention(field: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be a whole number of days or null")
    if not 1 <= value <= MAX_RETENTION_DAYS:
        raise invalid(field, f"must be between 1 and {MAX_RETENTION_DAYS} days")
    return value


def parse_money(field: str, value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(field, "must be a number or null")
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid(field, "must be a finite number")
    try:
        amount = Decimal(str(value)).quantize(CENT)
    except InvalidOperation:
        raise invalid(field, "is out of range") from None
    if not 0 <= amount <= MAX_MONEY:
        raise invalid(field, f"must be between 0 and {MAX_MONEY}")
    return amount


def parse_lead_thresholds(field: str, value: object) -> LeadThresholds | None:
    """{"shortSec", "longSec", "qualifiedSec"}, all whole seconds, or null for the defaults."""
    if value is None:
        return None
    names = ("shortSec", "longSec", "qualifiedSec")
    if not isinstance(value, dict) or set(value) != set(names):
        raise invalid(field, "must be null or an object with shortSec, longSec and qualifiedSec")
    for name in names:
        seconds = value[name]
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise invalid(f"{field}.{name}", "must be a whole number of seconds")
        if not 0 <= seconds <= MAX_LEAD_SECONDS:
            raise invalid(f"{field}.{name}", f"must be from 0 to {MAX_LEAD_SECONDS}")
    thresholds = LeadThresholds(value["shortSec"], value["longSec"], value["qualifiedSec"])
    # Analytics' buckets are under short, short to long, long and over: both
    # bounds must cut somewhere, or analytics would fall back to its defaults.
    if thresholds.short_sec < 1:
        raise invalid(f"{field}.shortSec", "must be at least 1")
    if thresholds.long_sec <= thresholds.short_sec:
        raise invalid(f"{field}.longSec", "must be greater than shortSec")
    return thresholds


def parse_daily_cap(field: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be a whole number of calls or null")
    if not 0 <= value <= MAX_DAILY_OUTBOUND_CAP:
        raise invalid(field, f"must be from 0 to {MAX_DAILY_OUTBOUND_CAP}")
    return value


def parse_area_code(field: str, value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not AREA_CODE.fullmatch(value):
        raise invalid(field, f"must be a 3-digit US area code such as 415, got {value!r}")
    return value


def optional_area_code(field: str, value: object) -> str | None:
    return None if value is None else parse_area_code(field, value)


def text_parser(limit: int) -> Callable[[str, object], str | None]:
    def parse(field: str, value: object) -> str | None:
        return optional_text(field, value, limit)

    return parse


def optional_text(field: str, value: object, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string or null")
    value = value.strip()
    if UNSAFE_TEXT.search(value):
        raise invalid(field, "must not contain control characters")
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    return value or None


Parser = Callable[[str, object], Any]

CLIENT_FIELDS: dict[str, tuple[str, Parser]] = {
    "name": ("name", parse_name),
    "forwardTo": ("forward_to", optional_e164),
    "timezone": ("timezone", parse_timezone),
    "recordingEnabled": ("recording_enabled", parse_bool),
    "recordingDisclaimer": ("recording_disclaimer", text_parser(MAX_DISCLAIMER)),
    "retentionDays": ("retention_days", parse_retention),
    "deleteFromTwilio": ("delete_from_twilio", parse_bool),
    "monthlyRevenue": ("monthly_revenue", parse_money),
    "valuePerConversion": ("value_per_conversion", parse_money),
    "leadThresholds": ("lead_thresholds", parse_lead_thresholds),
    "dailyOutboundCap": ("daily_outbound_cap", parse_daily_cap),
}

ASSIGNMENT_FIELDS: dict[str, tuple[str, Parser]] = {
    "phoneNumber": ("phone_number", optional_e164),
    "areaCode": ("area_code", optional_area_code),
    "forwardTo": ("forward_to", optional_e164),
    "record": ("record", optional_bool),
    "recordingDisclaimer": ("recording_disclaimer", text_parser(MAX_DISCLAIMER)),
    "campaign": ("campaign", text_parser(MAX_CAMPAIGN)),
}

NUMBER_CHANGE_FIELDS: dict[str, tuple[str, Parser]] = {
    "forwardTo": ("forward_to", parse_e164),
    "record": ("record", optional_bool),
    "recordingDisclaimer": ("recording_disclaimer", text_parser(MAX_DISCLAIMER)),
    "campaign": ("campaign", text_parser(MAX_CAMPAIGN)),
}


def refuse_unknown(body: dict[str, Any], known: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}")


def parse_client_id(raw: str) -> str | None:
    """The canonical form of a client id, or None if it cannot be one."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def money_json(amount: Decimal | None) -> float | None:
    return None if amount is None else float(amount)


def invalid(field: str, reason: str) -> ApiError:
    return ApiError(400, "invalid_field", f"{field} {reason}")


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TwilioSyncState:
    """Whether a number's configuration at Twilio is what router wants it to be."""

    pending: bool
    attempts: int = 0
    last_error: str | None = None
    synced_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "pending" if self.pending else "synced",
            "attempts": self.attempts,
            "lastError": self.last_error,
            "syncedAt": iso_utc(self.synced_at) if self.synced_at else None,
        }


@dataclass(frozen=True)
class OwnedNumber:
    """A number the business holds; without a client it waits in the pool."""

    phone_number: str
    twilio_sid: str | None
    locality: str | None
    region: str | None
    client_id: str | None
    acquired_at: datetime
    pooled_at: datetime
    twilio_sync: TwilioSyncState = TwilioSyncState(pending=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "phoneNumber": self.phone_number,
            "sid": self.twilio_sid,
            "locality": self.locality,
            "region": self.region,
            "clientId": self.client_id,
            "status": "pooled" if self.client_id is None else "assigned",
            "acquiredAt": iso_utc(self.acquired_at),
            "twilioSync": self.twilio_sync.to_json(),
        }


@dataclass(frozen=True)
class SyncTarget:
    """A number whose configuration at Twilio is due to be brought up to date.

    `version` identifies the request: a change after it was read makes a new
    one, so a sync never marks newer wishes done. `forward_to` is None for a
    number in the pool.
    """

    phone_number: str
    version: int
    attempts: int
    twilio_sid: str | None
    forward_to: str | None


@dataclass(frozen=True)
class TwilioConfigState:
    """A held number, where it forwards (None: pooled), and what Twilio last accepted."""

    phone_number: str
    forward_to: str | None
    applied: dict[str, Any] | None
    pending: bool
