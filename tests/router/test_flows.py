"""A number's call flow: what `Flow.parse` accepts and refuses, and business hours (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.router.dialing import DialPolicy
from services.router.flows import Flow
from switchboard.http import ApiError

NUMBER = "+14155550100"
POLICY = DialPolicy.of({"US", "CA"})

FULL: dict[str, Any] = {
    "businessHours": {
        "weekly": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [["10:00", "24:00"]]},
        "closedDates": ["2026-12-25"],
    },
    "ring": {
        "strategy": "sequential",
        "targets": [{"number": "+14155550101", "timeoutSec": 15}, {"number": "+16045550102"}],
    },
    "whisper": "Call from {campaign}",
    "screening": True,
    "afterHours": "forward",
    "afterHoursNumber": "+14155550199",
    "voicemail": {"greeting": "Sorry we missed you", "maxLengthSec": 90},
    "textBack": {"message": "Sorry we missed your call", "cooldownHours": 12},
}


def parse(body: Any) -> Flow:
    return Flow.parse(body, NUMBER, POLICY)


def refusal(body: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse(body)
    assert caught.value.status == 400
    return caught.value


def test_a_full_flow_round_trips_through_its_json() -> None:
    flow = parse(FULL)
    assert flow.ring is not None and flow.ring.strategy == "sequential"
    assert [t.timeout_sec for t in flow.ring.targets] == [15, 20]
    again = parse(flow.to_json())
    assert again == flow
    assert flow.to_json()["businessHours"]["weekly"]["sat"] == [["10:00", "24:00"]]


def test_an_empty_flow_is_no_flow() -> None:
    assert parse({}).is_empty
    assert parse({"ring": None, "whisper": None}).is_empty
    assert not parse({"screening": True}).is_empty


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"ringing": {}}, "ringing", "unknown field"),
        (
            {"ring": {"targets": [{"number": "+14155550101", "delay": 1}]}},
            "ring.targets[0].delay",
            "unknown field",
        ),
        (
            {"businessHours": {"weekly": {"mon": [["09:00", "25:00"]]}}},
            "businessHours.weekly.mon[0][1]",
            "must be a time",
        ),
        (
            {"businessHours": {"weekly": {"mon": [["9:00", "17:00"]]}}},
            "businessHours.weekly.mon[0][0]",
            "must be a time",
        ),
        (
            {"businessHours": {"weekly": {"tue": [["09:00", "13:00"], ["12:00", "17:00"]]}}},
            "businessHours.weekly.tue",
            "overlapping",
        ),
        (
            {"businessHours": {"weekly": {"wed": [["17:00", "09:00"]]}}},
            "businessHours.weekly.wed[0]",
            "must end after it starts",
        ),
        (
            {"businessHours": {"weekly": {"funday": []}}},
            "businessHours.weekly.funday",
            "unknown field",
        ),
        (
            {"businessHours": {"closedDates": ["2026-02-30"]}},
            "businessHours.closedDates[0]",
            "not a calendar date",
        ),
        (
            {"ring": {"targets": [{"number": f"+1415555{i:04d}"} for i in range(11)]}},
            "ring.targets",
            "at most 10",
        ),
        ({"ring": {"targets": []}}, "ring.targets", "1 to 10"),
        ({"ring": {"targets": [{"number": "4155550101"}]}}, "ring.targets[0].number", "E.164"),
        (
            {"ring": {"targets": [{"number": "+442079460000"}]}},
            "ring.targets[0].number",
            "calls may only go to CA, US",
        ),
        (
            {"ring": {"targets": [{"number": "+19005550100"}]}},
            "ring.targets[0].number",
            "premium-rate",
        ),
        ({"ring": {"targets": [{"number": NUMBER}]}}, "ring.targets[0].number", "call loop"),
        (
            {"ring": {"targets": [{"number": "+14155550101"}, {"number": "+14155550101"}]}},
            "ring.targets[1].number",
            "already a target",
        ),
        (
            {"ring": {"targets": [{"number": "+14155550101", "timeoutSec": 2}]}},
            "ring.targets[0].timeoutSec",
            "from 5 to 600",
        ),
        (
            {"ring": {"strategy": "random", "targets": [{"number": "+14155550101"}]}},
            "ring.strategy",
            "simultaneous",
        ),
        ({"afterHours": "forward"}, "afterHoursNumber", "required"),
        ({"afterHoursNumber": "+33142685300"}, "afterHoursNumber", "calls may only go to"),
        ({"afterHours": "hangup"}, "afterHours", "voicemail"),
        ({"screening": "yes"}, "screening", "true or false"),
        ({"whisper": "x" * 1001}, "whisper", "at most"),
        ({"voicemail": {"maxLengthSec": 0}}, "voicemail.maxLengthSec", "from 1 to"),
        ({"textBack": {"cooldownHours": 3}}, "textBack.message", "required"),
        ([], "flow", "must be an object"),
    ],
)
def test_a_bad_flow_is_refused_with_its_field_and_reason(
    body: Any, field: str, reason: str
) -> None:
    err = refusal(body)
    assert field in err.message
    assert reason in err.message


# Europe/Paris: DST starts 2026-03-29 (02:00 -> 03:00), ends 2026-10-25 (03:00 -> 02:00).
HOURS = parse(
    {
        "businessHours": {
            "weekly": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
            | {"sun": [["08:00", "10:00"]]},
            "closedDates": ["2026-12-25"],
        }
    }
)


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        # Winter (UTC+1): Monday 2026-03-23 09:00 Paris is 08:00 UTC.
        (datetime(2026, 3, 23, 7, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 23, 8, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 23, 15, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 23, 16, 0, tzinfo=UTC), False),
        # Summer (UTC+2): Monday 2026-03-30 09:00 Paris is 07:00 UTC.
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 30, 14, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 30, 15, 0, tzinfo=UTC), False),
        # The DST switch day itself (Sunday): 08:00 Paris is 06:00 UTC.
        (datetime(2026, 3, 29, 5, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 29, 6, 0, tzinfo=UTC), True),
        # Saturday: closed all day (not given).
        (datetime(2026, 3, 28, 10, 0, tzinfo=UTC), False),
        # Friday 2026-12-25 is a closed date; Thursday 24th is open.
        (datetime(2026, 12, 25, 10, 0, tzinfo=UTC), False),
        (datetime(2026, 12, 24, 10, 0, tzinfo=UTC), True),
    ],
)
def test_business_hours_are_the_clients_wall_clock_across_dst(utc: datetime, open_: bool) -> None:
    assert HOURS.is_open(utc, "Europe/Paris") is open_


def test_closed_dates_are_the_clients_date_not_utcs() -> None:
    # 2026-12-25 03:00 UTC is still Thursday the 24th in New York.
    flow = parse(
        {"businessHours": {"weekly": {"thu": [["00:00", "24:00"]]}, "closedDates": ["2026-12-25"]}}
    )
    assert flow.is_open(datetime(2026, 12, 25, 3, 0, tzinfo=UTC), "America/New_York")
    assert not flow.is_open(datetime(2026, 12, 25, 3, 0, tzinfo=UTC), "UTC")


def test_a_flow_without_business_hours_is_always_in_hours() -> None:
    assert parse({"screening": True}).is_open(datetime(2026, 12, 25, 3, 0, tzinfo=UTC), "UTC")
