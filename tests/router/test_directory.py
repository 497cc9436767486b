"""Validation of management API bodies (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.router.directory import (
    DEFAULT_DISCLAIMER,
    Client,
    ClientSettings,
    NewAssignment,
    NumberChanges,
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
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    return Client("id", ClientSettings("Acme", forward_to=forward_to), moment, moment)


def test_client_defaults_to_utc_recording_with_a_disclaimer_and_trims_its_name() -> None:
    new = ClientSettings.parse({"name": "  Acme  "})
    assert new == ClientSettings(
        name="Acme",
        forward_to=None,
        timezone="UTC",
        recording_enabled=True,
        recording_disclaimer=DEFAULT_DISCLAIMER,
        retention_days=None,
        delete_from_twilio=False,
        monthly_revenue=None,
        value_per_conversion=None,
    )


@pytest.mark.parametrize("name", [None, "", "   ", 42, "x" * 201, "bad\x00name"])
def test_client_name_must_be_a_short_non_empty_string(name: object) -> None:
    assert "name" in rejected(ClientSettings.parse, {"name": name})


def test_client_name_of_two_hundred_characters_is_accepted() -> None:
    assert ClientSettings.parse({"name": "x" * 200}).name == "x" * 200


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "", 5, "utc "])
def test_client_timezone_must_be_an_iana_zone(zone: object) -> None:
    assert "timezone" in rejected(ClientSettings.parse, {"name": "Acme", "timezone": zone})


def test_client_timezone_accepts_iana_zones() -> None:
    assert ClientSettings.parse({"name": "A", "timezone": "America/New_York"}).timezone == (
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
    assert "forwardTo" in rejected(ClientSettings.parse, {"name": "A", "forwardTo": number})


def test_assignment_follows_its_client_by_default_and_treats_blank_text_as_absent() -> None:
    new = NewAssignment.parse(
        {"phoneNumber": "+14155550100", "recordingDisclaimer": "  ", "campaign": ""}
    )
    assert new.record is None
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


def test_client_settings_take_every_field_of_the_guide() -> None:
    settings = ClientSettings.parse(
        {
            "name": "Acme",
            "forwardTo": "+14155559999",
            "timezone": "America/Los_Angeles",
            "recordingEnabled": False,
            "recordingDisclaimer": None,
            "retentionDays": 90,
            "deleteFromTwilio": True,
            "monthlyRevenue": 1500,
            "valuePerConversion": 49.999,
            "leadThresholds": {"shortSec": 20, "longSec": 300, "qualifiedSec": 45},
            "dailyOutboundCap": 50,
        }
    )
    assert settings.to_json() == {
        "name": "Acme",
        "forwardTo": "+14155559999",
        "timezone": "America/Los_Angeles",
        "recordingEnabled": False,
        "recordingDisclaimer": None,
        "retentionDays": 90,
        "deleteFromTwilio": True,
        "monthlyRevenue": 1500.0,
        "valuePerConversion": 50.0,
        "leadThresholds": {"shortSec": 20, "longSec": 300, "qualifiedSec": 45},
        "dailyOutboundCap": 50,
    }


def test_patch_changes_only_the_fields_given_and_says_which() -> None:
    before = ClientSettings.parse({"name": "Acme", "retentionDays": 30})
    after = before.patched({"recordingEnabled": False, "retentionDays": None})
    assert after == ClientSettings(name="Acme", recording_enabled=False, retention_days=None)
    assert after.changed_fields(before) == ["recordingEnabled", "retentionDays"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recordingEnabled", "yes"),
        ("recordingEnabled", None),
        ("deleteFromTwilio", 1),
        ("retentionDays", 0),
        ("retentionDays", 36501),
        ("retentionDays", 7.5),
        ("retentionDays", True),
        ("monthlyRevenue", -1),
        ("monthlyRevenue", "100"),
        ("monthlyRevenue", float("nan")),
        ("monthlyRevenue", float("inf")),
        ("valuePerConversion", 10**13),
        ("valuePerConversion", False),
        ("valuePerConversion", -0.5),
        ("leadThresholds", {"shortSec": 30, "longSec": 120}),
        ("leadThresholds", {"shortSec": 30, "longSec": 120, "qualifiedSec": 30, "x": 1}),
        ("leadThresholds", {"shortSec": 120, "longSec": 30, "qualifiedSec": 30}),
        ("leadThresholds", {"shortSec": 60, "longSec": 60, "qualifiedSec": 30}),
        ("leadThresholds", {"shortSec": 0, "longSec": 60, "qualifiedSec": 30}),
        ("leadThresholds", {"shortSec": 30, "longSec": 120, "qualifiedSec": -1}),
        ("leadThresholds", {"shortSec": 30.5, "longSec": 120, "qualifiedSec": 30}),
        ("leadThresholds", {"shortSec": 30, "longSec": 120, "qualifiedSec": True}),
        ("leadThresholds", {"shortSec": 30, "longSec": 86401, "qualifiedSec": 30}),
        ("leadThresholds", [30, 120, 30]),
        ("dailyOutboundCap", -1),
        ("dailyOutboundCap", 2.5),
        ("dailyOutboundCap", "10"),
        ("recordingDisclaimer", "x" * 1001),
        ("recordingDisclaimer", "say \x07 beep"),
        ("name", "lone \ud800 surrogate"),
    ],
)
def test_bad_client_setting_is_refused_naming_the_field(field: str, value: object) -> None:
    assert field in rejected(ClientSettings.parse, {"name": "Acme", field: value})


def test_unknown_client_fields_are_refused_not_ignored() -> None:
    with pytest.raises(ApiError) as caught:
        ClientSettings.parse({"name": "Acme", "recordingEnable": False})
    assert caught.value.code == "unknown_field"
    assert "recordingEnable" in caught.value.message


def test_a_whole_client_needs_a_name() -> None:
    assert "name" in rejected(ClientSettings.parse, {"forwardTo": "+14155559999"})


@pytest.mark.parametrize("area", ["415", 415, "212"])
def test_pool_assignment_may_ask_for_an_area_code(area: object) -> None:
    assert NewAssignment.parse({"areaCode": area}).area_code == str(area)


@pytest.mark.parametrize("area", ["41", "4155", "015", "1xx", "٤١٥", 41.5, True])
def test_area_codes_are_three_us_digits(area: object) -> None:
    assert "areaCode" in rejected(NewAssignment.parse, {"areaCode": area})


def test_non_ascii_digits_are_not_phone_numbers() -> None:
    assert "phoneNumber" in rejected(NewAssignment.parse, {"phoneNumber": "+1٤١٥5550100"})


def test_a_pooled_number_forwarding_to_itself_is_a_loop() -> None:
    new = NewAssignment.parse({"forwardTo": "+14155550100"})
    with pytest.raises(ApiError):
        new.forward_to_for(client(None), "+14155550100")
    assert new.forward_to_for(client(None), "+14155550111") == "+14155550100"


def test_number_changes_keep_nulls_that_mean_follow_the_client() -> None:
    changes = NumberChanges.parse({"campaign": "fall", "record": None})
    assert changes.values == {"campaign": "fall", "record": None}


@pytest.mark.parametrize(
    "body", [{}, {"forwardTo": None}, {"phoneNumber": "+14155550100"}, {"record": "no"}]
)
def test_number_changes_must_say_something_valid(body: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as caught:
        NumberChanges.parse(body)
    assert caught.value.status == 400
