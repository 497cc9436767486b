"""The text-back decision: who gets a text after a missed call, and who never does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.reporting.alerts import MissedCall, TextBackSetting
from services.reporting.textback_rules import (
    History,
    Send,
    Skip,
    decide,
    is_textable,
    is_withheld,
)

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=24)
NOTHING_KNOWN = History()
SETTING = TextBackSetting("Sorry we missed your call, we will ring you back.", 24)
CALL = MissedCall(
    call_sid="CA" + "1" * 32,
    client_id="client-1",
    called_number="+14155550100",
    caller_number="+14155550177",
    outcome="no-answer",
    called_at=NOW - timedelta(minutes=2),
)


def weigh(
    call: MissedCall = CALL,
    setting: TextBackSetting | None = SETTING,
    history: History = NOTHING_KNOWN,
    now: datetime = NOW,
) -> Send | Skip:
    return decide(call, setting, history, now, MAX_AGE)


@pytest.mark.parametrize("outcome", ["no-answer", "busy", "failed", "canceled", "voicemail"])
def test_a_missed_call_texts_the_caller_from_the_number_they_called(outcome: str) -> None:
    assert weigh(replace(CALL, outcome=outcome)) == Send(
        to="+14155550177", from_="+14155550100", body=SETTING.message
    )


def test_an_answered_call_is_not_texted() -> None:
    assert weigh(replace(CALL, outcome="completed")) == Skip("not-missed")


def test_a_number_without_text_back_texts_nobody() -> None:
    assert weigh(setting=None) == Skip("no-text-back")


@pytest.mark.parametrize(
    "caller",
    [
        "",
        "anonymous",
        "Anonymous",
        "restricted",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
    ],
)
def test_a_withheld_caller_is_not_texted(caller: str) -> None:
    assert is_withheld(caller)
    assert weigh(replace(CALL, caller_number=caller)) == Skip("withheld")


@pytest.mark.parametrize(
    "caller",
    [
        "+442071838750",  # a London landline
        "+33142685300",  # a Paris landline
        "4155550177",  # not E.164
        "+1415555017",  # too short to be a number
        "sip:someone@example.com",
    ],
)
def test_a_caller_that_cannot_take_a_text_is_not_texted(caller: str) -> None:
    assert not is_textable(caller)
    assert weigh(replace(CALL, caller_number=caller)) == Skip("not-mobile")


@pytest.mark.parametrize("caller", ["+14155550177", "+33612345678", "+4915123456789"])
def test_mobile_and_maybe_mobile_numbers_take_texts(caller: str) -> None:
    assert is_textable(caller)


def test_an_opted_out_caller_is_never_texted_even_after_the_cooldown() -> None:
    history = History(opted_out=True, last_texted_at=NOW - timedelta(days=30))
    assert weigh(history=history) == Skip("opted-out")


def test_a_caller_texted_within_the_cooldown_is_not_texted_again() -> None:
    history = History(last_texted_at=NOW - timedelta(hours=23, minutes=59))
    assert weigh(history=history) == Skip("cooldown")


def test_a_caller_is_texted_again_once_the_cooldown_is_over() -> None:
    history = History(last_texted_at=NOW - timedelta(hours=24))
    assert isinstance(weigh(history=history), Send)


def test_a_zero_cooldown_texts_every_missed_call() -> None:
    history = History(last_texted_at=NOW)
    assert isinstance(weigh(setting=replace(SETTING, cooldown_hours=0), history=history), Send)


def test_an_alert_older_than_the_age_limit_texts_nobody() -> None:
    assert weigh(replace(CALL, called_at=NOW - MAX_AGE - timedelta(seconds=1))) == Skip("too-old")


def test_withheld_is_decided_before_anything_the_ledger_knows() -> None:
    history = History(opted_out=True)
    assert weigh(replace(CALL, caller_number="anonymous"), history=history) == Skip("withheld")


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (None, None),
        ({}, None),
        ({"textBack": None}, None),
        ({"textBack": {"message": "Hi", "cooldownHours": 12}}, TextBackSetting("Hi", 12)),
        ({"textBack": {"message": "Hi"}}, TextBackSetting("Hi", 24)),
        ({"textBack": {"message": "  "}}, None),
        ({"textBack": {"message": "Hi", "cooldownHours": -1}}, None),
    ],
)
def test_the_setting_is_read_from_the_flow_on_number_assigned(
    flow: object, expected: TextBackSetting | None
) -> None:
    assert TextBackSetting.from_flow(flow) == expected
