"""The metrics as the API speaks them: time buckets, zero-filling, rates and shapes (pure).

Days, hours and months are those of a time zone: the client's (from its
settings), `tz` when the request names one, else UTC. A time series has one
point per bucket from `from` to `to`, empty buckets included. Bucket keys
are what `store` groups by: Unix seconds of the local hour's start, the
local date ('YYYY-MM-DD') or the local month's first day; each point's `t`
is the bucket's start as ISO 8601 with the zone's offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.analytics.calls import iso_utc
from services.analytics.clients import LeadThresholds
from switchboard.http import ApiError

INTERVALS = ("hour", "day", "month")
DEFAULT_SPAN = timedelta(days=30)
MAX_POINTS = 10_000
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def rate(part: int | float, whole: int | float) -> float:
    return round(part / whole, 4) if whole else 0.0


def series_range(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The range of a time series: `to` defaults to now, `from` to 30 days before `to`."""
    stop = end or now
    return (start or stop - DEFAULT_SPAN), stop


def bucket_keys(start: datetime, end: datetime, interval: str, tz: str) -> list[Any]:
    """Every bucket key from the one holding `start` up to (not including) `end`."""
    zone = ZoneInfo(tz)
    keys: list[Any] = []
    if interval == "hour":
        local = start.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        second = int(local.timestamp())
        stop = end.timestamp()
        while second < stop:
            keys.append(second)
            second += 3600
            _check_points(keys)
        return keys
    day = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    if interval == "month":
        day = day.replace(day=1)
    while day <= last:
        keys.append(day.isoformat())
        day = _next_month(day) if interval == "month" else day + timedelta(days=1)
        _check_points(keys)
    return keys


def _check_points(keys: list[Any]) -> None:
    if len(keys) > MAX_POINTS:
        raise ApiError(
            400,
            "invalid_parameter",
            f"the range holds more than {MAX_POINTS} points at this interval; "
            "use a larger interval or a shorter range",
        )


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def bucket_start(key: Any, interval: str, tz: str) -> str:
    """The bucket's start as ISO 8601 with the zone's offset."""
    zone = ZoneInfo(tz)
    if interval == "hour":
        moment = datetime.fromtimestamp(int(key), zone)
    else:
        moment = datetime.combine(date.fromisoformat(str(key)), time.min, tzinfo=zone)
    return moment.isoformat()


@dataclass(frozen=True)
class Point:
    total: int = 0
    inbound: int = 0
    outbound: int = 0
    completed: int = 0
    missed: int = 0
    answered: int = 0
    durationSec: int = 0


def zero_filled(
    keys: Sequence[Any], found: Mapping[Any, Point], interval: str, tz: str
) -> list[dict[str, Any]]:
    """One point per key in order, zero where nothing was found.

    A key the store found outside the generated ones (it cannot happen for
    whole-hour zones) is kept rather than dropped, in order.
    """
    every = list(keys)
    known = set(every)
    extra = [key for key in found if key not in known]
    if extra:
        every = sorted({*every, *extra})
    points = []
    for key in every:
        point = found.get(key, Point())
        points.append(
            {
                "t": bucket_start(key, interval, tz),
                "total": point.total,
                "inbound": point.inbound,
                "outbound": point.outbound,
                "completed": point.completed,
                "missed": point.missed,
                "answered": point.answered,
                "durationSec": point.durationSec,
                "answerRate": rate(point.answered, point.completed + point.missed),
            }
        )
    return points


def peak_hours(counts: Mapping[tuple[int, int], tuple[int, int]]) -> dict[str, Any]:
    """From {(dayOfWeek 1-7 Mon-Sun, hour 0-23): (calls, answered)} the three views.

    `hours`: 24 entries by hour of day; `days`: 7 by day of week; `grid`:
    168, day by hour. All zero-filled. `peakHour` / `peakDay` are the busiest
    (the earliest on a tie), None without calls.
    """
    by_hour = [0] * 24
    answered_by_hour = [0] * 24
    by_day = [0] * 7
    grid = []
    for day in range(1, 8):
        for hour in range(24):
            calls, answered = counts.get((day, hour), (0, 0))
            by_hour[hour] += calls
            answered_by_hour[hour] += answered
            by_day[day - 1] += calls
            grid.append({"dayOfWeek": day, "hour": hour, "calls": calls})
    peak_hour = max(range(24), key=lambda h: (by_hour[h], -h)) if any(by_hour) else None
    peak_day = max(range(7), key=lambda d: (by_day[d], -d)) + 1 if any(by_day) else None
    return {
        "hours": [
            {"hour": h, "calls": by_hour[h], "answered": answered_by_hour[h]} for h in range(24)
        ],
        "days": [{"dayOfWeek": d + 1, "name": DAY_NAMES[d], "calls": by_day[d]} for d in range(7)],
        "grid": grid,
        "peakHour": peak_hour,
        "peakDayOfWeek": peak_day,
    }


@dataclass(frozen=True)
class Durations:
    calls: int  # answered calls the figures are over
    totalSec: int
    avgSec: float
    medianSec: float
    p90Sec: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Caller:
    number: str
    calls: int
    answered: int
    lastCallAt: datetime
    firstCallAt: datetime  # the first ever in this scope, before the range too

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "calls": self.calls,
            "answered": self.answered,
            "lastCallAt": iso_utc(self.lastCallAt),
            "firstCallAt": iso_utc(self.firstCallAt),
        }


@dataclass(frozen=True)
class CallerStats:
    """Distinct callers in the range and how many came back.

    repeat caller: called at least twice in the range (repeatCallerRate =
    repeatCallers / uniqueCallers). first-time caller: whose first call ever
    (in this scope) falls in the range; the others are returning callers.
    firstTimeCalls / repeatCalls split the calls the same way: a call is a
    first-time call when it is its caller's first ever.
    """

    uniqueCallers: int
    repeatCallers: int
    firstTimeCallers: int
    firstTimeCalls: int
    totalCalls: int

    def to_json(self) -> dict[str, Any]:
        return {
            "uniqueCallers": self.uniqueCallers,
            "repeatCallers": self.repeatCallers,
            "repeatCallerRate": rate(self.repeatCallers, self.uniqueCallers),
            "firstTimeCallers": self.firstTimeCallers,
            "returningCallers": self.uniqueCallers - self.firstTimeCallers,
            "firstTimeCalls": self.firstTimeCalls,
            "repeatCalls": self.totalCalls - self.firstTimeCalls,
        }


def lead_quality(
    thresholds: LeadThresholds, bucket_counts: Sequence[int], decided: int, qualified: int
) -> dict[str, Any]:
    """Buckets of decided calls by talk time (a missed call talks 0 s), and qualified leads.

    A qualified lead is an answered call that talked at least
    `qualified_sec`; the rate is over the decided calls (answered + missed).
    """
    buckets = [
        {"label": label, "minSec": low, "maxSec": high, "calls": count}
        for (label, low, high), count in zip(thresholds.buckets(), bucket_counts, strict=True)
    ]
    return {
        "buckets": buckets,
        "calls": decided,
        "qualifiedLeads": qualified,
        "qualifiedRate": rate(qualified, decided),
        "thresholds": {
            "shortSec": thresholds.short_sec,
            "longSec": thresholds.long_sec,
            "qualifiedSec": thresholds.qualified_sec,
        },
    }


def day_range_text(start: datetime | None, end: datetime | None) -> dict[str, str | None]:
    """The range as the response echoes it (UTC instants)."""
    return {
        "from": iso_utc(start) if start else None,
        "to": iso_utc(end) if end else None,
    }


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_points(rows: Iterable[tuple[Any, ...]]) -> dict[Any, Point]:
    """Store rows (key, total, inbound, outbound, completed, missed, answered, duration)."""
    return {row[0]: Point(*(int(v or 0) for v in row[1:])) for row in rows}
