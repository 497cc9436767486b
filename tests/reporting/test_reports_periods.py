"""Report periods in the client's zone, and when each falls due (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.reporting.reports.periods import (
    InvalidPeriod,
    Period,
    due_periods,
    month_of,
    parse_period,
    week_of,
)

LA, KOLKATA = "America/Los_Angeles", "Asia/Kolkata"


def test_a_week_across_the_spring_change_is_167_hours_of_seven_local_days() -> None:
    week = week_of(date(2026, 3, 5))
    assert (week.first, week.last) == (date(2026, 3, 2), date(2026, 3, 8))
    assert week.start(LA) == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert week.end(LA) == datetime(2026, 3, 9, 7, tzinfo=UTC)
    assert week.end(LA) - week.start(LA) == timedelta(hours=167)
    autumn = week_of(date(2026, 11, 1))  # clocks go back on Sunday 11-01
    assert autumn.end(LA) - autumn.start(LA) == timedelta(hours=169)


def test_kolkatas_half_hour_offset_moves_the_bounds_to_18_30z() -> None:
    week = week_of(date(2026, 3, 2))
    assert week.start(KOLKATA) == datetime(2026, 3, 1, 18, 30, tzinfo=UTC)
    assert week.end(KOLKATA) == datetime(2026, 3, 8, 18, 30, tzinfo=UTC)


def test_months_end_on_their_last_day() -> None:
    assert month_of(date(2028, 2, 10)) == Period("month", date(2028, 2, 1), date(2028, 2, 29))
    assert month_of(date(2026, 12, 31)).last == date(2026, 12, 31)


def test_a_report_is_due_at_eight_local_the_day_after_its_period() -> None:
    assert week_of(date(2026, 3, 2)).due_at(LA) == datetime(2026, 3, 9, 15, tzinfo=UTC)
    assert month_of(date(2026, 2, 1)).due_at(KOLKATA) == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


def test_due_periods_are_those_due_after_since_and_by_now_oldest_first() -> None:
    now = datetime(2026, 3, 23, 15, 0, tzinfo=UTC)  # Monday 08:00 PDT exactly
    since = datetime(2026, 3, 5, tzinfo=UTC)
    due = due_periods("week", LA, now, since)
    assert [p.first for p in due] == [date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)]
    before = due_periods("week", LA, now - timedelta(seconds=1), since)
    assert [p.first for p in before] == [date(2026, 3, 2), date(2026, 3, 9)]
    assert due_periods("month", LA, now, since) == []
    april = datetime(2026, 4, 1, 15, tzinfo=UTC)
    assert [p.first for p in due_periods("month", LA, april, since)] == [date(2026, 3, 1)]


def test_a_request_names_a_whole_week_or_month() -> None:
    assert parse_period("week", "2026-03-02") == week_of(date(2026, 3, 2))
    assert parse_period("month", "2026-02-01", "2026-02-28") == month_of(date(2026, 2, 1))
    for kind, first, last, reason in [
        ("week", "2026-03-03", None, "Monday"),
        ("month", "2026-02-02", None, "1st"),
        ("week", "2026-03-02", "2026-03-09", "last day"),
        ("day", "2026-03-02", None, "period"),
        ("week", "20260302", None, "YYYY-MM-DD"),
        ("week", "2026-02-30", None, "YYYY-MM-DD"),
        ("week", 20260302, None, "YYYY-MM-DD"),
        ("week", "0001-01-01", None, "between"),
    ]:
        with pytest.raises(InvalidPeriod, match=reason):
            parse_period(kind, first, last)
