"""Time-range bounds at the edges of the calendar are a 400, never a 500 (pure)."""

from __future__ import annotations

import pytest

from services.analytics.calls import parse_instant
from switchboard.http import ApiError


@pytest.mark.parametrize(
    ("raw", "end_of_day"),
    [
        ("9999-12-31", True),
        ("0001-01-01", False),
        ("9999-12-31T23:59:59+14:00", False),
        ("0001-01-01T00:00:00-12:00", False),
        ("1969-12-31T23:59:59Z", False),
        ("2024-02-30", False),
    ],
)
def test_out_of_range_or_impossible_bounds_are_refused_with_400(raw: str, end_of_day: bool) -> None:
    with pytest.raises(ApiError) as refused:
        parse_instant("to", raw, end_of_day)
    assert refused.value.status == 400


def test_a_bare_date_as_upper_bound_includes_the_whole_local_day() -> None:
    moment = parse_instant("to", "2024-05-01", end_of_day=True, tz="America/New_York")
    assert moment.isoformat() == "2024-05-02T04:00:00+00:00"
