"""Report periods: a calendar week (Monday to Sunday) or month in the client's time zone.

Pure date arithmetic, apart from any I/O. A period is its first and last
local day; its bounds are the local midnights around it, turned into UTC
instants, so a week that crosses a DST change is 167 or 169 hours long and
still holds exactly its seven local days. A period's report is due at
08:00 local on the day after it ends: the Monday after the week, the 1st
after the month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("week", "month")
SEND_AT = time(8, 0)
MAX_CATCH_UP = 60


class InvalidPeriod(ValueError):
    """A period that is not a whole calendar week or month; the message says why."""


@dataclass(frozen=True)
class Period:
    kind: str  # "week" or "month"
    first: date
    last: date  # inclusive

    def start(self, tz: str) -> datetime:
        """The UTC instant of local midnight starting the first day."""
        return local_midnight(self.first, tz)

    def end(self, tz: str) -> datetime:
        """The UTC instant of local midnight after the last day (exclusive)."""
        return local_midnight(self.last + timedelta(days=1), tz)

    def due_at(self, tz: str) -> datetime:
        """When its report is sent: 08:00 local on the day after the period."""
        day = self.last + timedelta(days=1)
        return datetime.combine(day, SEND_AT, tzinfo=ZoneInfo(tz)).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def label(self) -> str:
        if self.kind == "month":
            return self.first.strftime("%B %Y")
        return f"week of {self.first.isoformat()}"


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def week_of(day: date) -> Period:
    monday = day - timedelta(days=day.weekday())
    return Period("week", monday, monday + timedelta(days=6))


def month_of(day: date) -> Period:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period("month", first, following - timedelta(days=1))


def period_of(kind: str, day: date) -> Period:
    return week_of(day) if kind == "week" else month_of(day)


def parse_period(kind: object, first: object, last: object = None) -> Period:
    """The period a request names: `week` from a Monday, `month` from a 1st; `last` optional."""
    if kind not in PERIODS:
        raise InvalidPeriod(f"period must be one of {', '.join(PERIODS)}, got {kind!r}")
    start = _day("from", first)
    period = period_of(str(kind), start)
    if period.first != start:
        what = "a Monday" if kind == "week" else "the 1st of a month"
        raise InvalidPeriod(f"from must be {what} for a {kind} report, got {start.isoformat()}")
    if last is not None and _day("to", last) != period.last:
        raise InvalidPeriod(
            f"to must be the last day of the {kind} ({period.last.isoformat()}), got {last!r}"
        )
    return period


def _day(name: str, raw: object) -> date:
    if not isinstance(raw, str) or len(raw) != 10:
        raise InvalidPeriod(f"{name} must be a date as YYYY-MM-DD, got {raw!r}")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidPeriod(f"{name} must be a date as YYYY-MM-DD, got {raw!r}") from None
    if not 1970 <= day.year <= 2999:
        raise InvalidPeriod(f"{name} must be between 1970 and 2999, got {raw!r}")
    return day


def due_periods(kind: str, tz: str, now: datetime, since: datetime) -> list[Period]:
    """The periods of `kind` whose report fell due after `since` and by `now`, oldest first.

    A scheduler that was down across a due time still finds that period on
    its next look, so a stop never skips one; claiming each by its unique
    key keeps a second look from doubling it.
    """
    local_now = now.astimezone(ZoneInfo(tz)).date()
    found: list[Period] = []
    period = period_of(kind, local_now)
    # Step back from the period holding today until a period fell due at or before `since`
    # (bounded, so a `since` far in the past cannot make it walk for ever).
    for _ in range(MAX_CATCH_UP):
        period = period_of(kind, period.first - timedelta(days=1))
        due = period.due_at(tz)
        if due <= since:
            break
        if due <= now:
            found.append(period)
    return list(reversed(found))
