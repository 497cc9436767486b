"""Clients and the numbers assigned to them: the entities and their rules.

`Client` and `NumberAssignment` are what the store returns and the API shows.
`NewClient` and `NewAssignment` are validated request bodies: parsing one
either yields a value the store can write as is, or raises `ApiError(400)`
with the reason, so nothing half-checked ever reaches the database.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from switchboard.http import ApiError

E164 = re.compile(r"\+[1-9]\d{1,14}")
MAX_NAME = 200
MAX_CAMPAIGN = 200
MAX_DISCLAIMER = 1000


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    forward_to: str | None
    timezone: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "forwardTo": self.forward_to,
            "timezone": self.timezone,
            "createdAt": iso_utc(self.created_at),
        }


@dataclass(frozen=True)
class NumberAssignment:
    phone_number: str
    client_id: str
    forward_to: str
    record: bool
    recording_disclaimer: str | None
    campaign: str | None
    assigned_at: datetime

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
class NewClient:
    name: str
    forward_to: str | None
    timezone: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> NewClient:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid("name", "must be a non-empty string")
        name = name.strip()
        if "\x00" in name:
            raise invalid("name", "must not contain NUL characters")
        if len(name) > MAX_NAME:
            raise invalid("name", f"must be at most {MAX_NAME} characters")
        forward_to = body.get("forwardTo")
        if forward_to is not None:
            forward_to = parse_e164("forwardTo", forward_to)
        timezone = body.get("timezone")
        if timezone is None:
            timezone = "UTC"
        elif not isinstance(timezone, str) or timezone not in iana_zones():
            raise invalid(
                "timezone", f"must be an IANA time zone such as Europe/Paris, got {timezone!r}"
            )
        return cls(name=name, forward_to=forward_to, timezone=timezone)


@dataclass(frozen=True)
class NewAssignment:
    phone_number: str
    forward_to: str | None
    record: bool
    recording_disclaimer: str | None
    campaign: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> NewAssignment:
        if body.get("phoneNumber") is None:
            raise invalid("phoneNumber", "is required")
        phone_number = parse_e164("phoneNumber", body["phoneNumber"])
        forward_to = body.get("forwardTo")
        if forward_to is not None:
            forward_to = parse_e164("forwardTo", forward_to)
        record = body.get("record")
        if record is None:
            record = True
        elif not isinstance(record, bool):
            raise invalid("record", "must be true or false")
        return cls(
            phone_number=phone_number,
            forward_to=forward_to,
            record=record,
            recording_disclaimer=optional_text(
                "recordingDisclaimer", body.get("recordingDisclaimer"), MAX_DISCLAIMER
            ),
            campaign=optional_text("campaign", body.get("campaign"), MAX_CAMPAIGN),
        )

    def forward_to_for(self, client: Client) -> str:
        """The phone this number rings: its own forwardTo, else the client's."""
        target = self.forward_to or client.forward_to
        if target is None:
            raise invalid("forwardTo", "is required: the client has no default forwardTo")
        if target == self.phone_number:
            raise invalid("forwardTo", "must differ from the number itself (a call loop)")
        return target


def parse_client_id(raw: str) -> str | None:
    """The canonical form of a client id, or None if it cannot be one."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def parse_e164(field: str, value: object) -> str:
    if not isinstance(value, str) or not E164.fullmatch(value):
        raise invalid(field, f"must be an E.164 phone number such as +14155550100, got {value!r}")
    return value


def optional_text(field: str, value: object, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string or null")
    value = value.strip()
    if "\x00" in value:
        raise invalid(field, "must not contain NUL characters")
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    return value or None


def invalid(field: str, reason: str) -> ApiError:
    return ApiError(400, "invalid_field", f"{field} {reason}")


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
