"""Validation of management API bodies (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.router.directory import (
    Client,
    NewAssignment,
    NewClient,
    parse_client_id,
)
from switchboard.http import ApiError


def rejected(parse: Any, body: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as caught:
        parse(body)
    assert caught.value.status == 400
    message: str = caught.value.message
    return message


def client(forward_to: str | None) -> Client:
    return Client("id", "Acme", forward_to, "UTC", datetime(2025, 1, 1, tzinfo=UTC))


def test_client_defaults_to_utc_and_trims_its_name() -> None:
    new = NewClient.parse({"name": "  Acme  "})
    assert new == NewClient(name="Acme", forward_to=None, timezone="UTC")


@pytest.mark.parametrize("name", [None, "", "   ", 42, "x" * 201, "bad\x00name"])
def test_client_name_must_be_a_short_non_empty_string(name: object) -> None:
    assert "name" in rejected(NewClient.parse, {"name": name})


def test_client_name_of_two_hundred_characters_is_accepted() -> None:
    assert NewClient.parse({"name": "x" * 200}).name == "x" * 200


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "", 5, "utc "])
def test_client_timezone_must_be_an_iana_zone(zone: object) -> None:
    assert "timezone" in rejected(NewClient.parse, {"name": "Acme", "timezone": zone})


def test_client_timezone_accepts_iana_zones() -> None:
    assert NewClient.parse({"name": "A", "timezone": "America/New_York"}).timezone == (
        "America/New_York"
    )


@pytest.mark.parametrize(
    "number",
    [
        "4155550100",
        "+04155550100",
        "+1",
        "+1415555010012345",
        "+1 415 555 0100",
        "+1415\n",
        14155550100,
    ],
)
def test_phone_numbers_must_be_e164(number: object) -> None:
    assert "phoneNumber" in rejected(NewAssignment.parse, {"phoneNumber": number})
    assert "forwardTo" in rejected(NewClient.parse, {"name": "A", "forwardTo": number})


def test_assignment_records_by_default_and_treats_blank_text_as_absent() -> None:
    new = NewAssignment.parse(
        {"phoneNumber": "+14155550100", "recordingDisclaimer": "  ", "campaign": ""}
    )
    assert new.record is True
    assert new.recording_disclaimer is None
    assert new.campaign is None


@pytest.mark.parametrize("record", ["true", 1, "yes"])
def test_assignment_record_flag_must_be_boolean(record: object) -> None:
    body = {"phoneNumber": "+14155550100", "record": record}
    assert "record" in rejected(NewAssignment.parse, body)


def test_assignment_falls_back_to_the_client_forward_to() -> None:
    new = NewAssignment.parse({"phoneNumber": "+14155550100"})
    assert new.forward_to_for(client("+14155559999")) == "+14155559999"
    own = NewAssignment.parse({"phoneNumber": "+14155550100", "forwardTo": "+14155558888"})
    assert own.forward_to_for(client("+14155559999")) == "+14155558888"


def test_assignment_without_any_forward_to_is_rejected() -> None:
    new = NewAssignment.parse({"phoneNumber": "+14155550100"})
    with pytest.raises(ApiError) as caught:
        new.forward_to_for(client(None))
    assert caught.value.status == 400
    assert "forwardTo" in caught.value.message


def test_number_forwarding_to_itself_is_rejected() -> None:
    new = NewAssignment.parse({"phoneNumber": "+14155550100", "forwardTo": "+14155550100"})
    with pytest.raises(ApiError) as caught:
        new.forward_to_for(client(None))
    assert caught.value.status == 400


@pytest.mark.parametrize("raw", ["nope", "123", "0b6f7d1c-3a55-4f0a-9a39-4d7b8e1f2a1", ""])
def test_malformed_client_ids_are_not_ids(raw: str) -> None:
    assert parse_client_id(raw) is None


def test_client_ids_are_canonical_uuids() -> None:
    raw = "0B6F7D1C-3A55-4F0A-9A39-4D7B8E1F2A10"
    assert parse_client_id(raw) == raw.lower()
