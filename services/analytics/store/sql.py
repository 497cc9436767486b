"""How values and key lists cross to ClickHouse: times, key lists, zones.

Timestamps cross the boundary as Unix milliseconds, which means the same on
chDB and on a server whatever either thinks the local time zone is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.analytics.clients import valid_timezone

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# The consumer's look-ups and inserts are small (one batch): run on one
# thread each, they leave the other core to the consumer's Python and cost
# less in thread hand-offs than they could gain.
_ONE_THREAD = {"max_threads": 1, "max_insert_threads": 1}


_ONE_THREAD_SQL = "SETTINGS max_threads = 1"


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_MILLISECOND = timedelta(milliseconds=1)


def _stored_ms(moment: datetime) -> int:
    """`moment` as a DateTime64(3) value: truncated to the millisecond, as ClickHouse does."""
    return (moment - _EPOCH) // _MILLISECOND


def _string_list(values: Sequence[str]) -> str:
    """An SQL expression of these strings as an Array(String), for `IN`.

    One string literal holding a JSON array, which JSONExtract reads at once:
    for a batch's hundreds of keys it costs less to send and to parse than
    bound parameters or an array literal, and the primary key is still used
    (`IN` of a constant). Inside single quotes only the backslash and the
    quote need escaping.
    """
    if not values:
        return "[]"
    text = orjson.dumps(list(values)).decode()
    return "JSONExtract('" + text.replace("\\", "\\\\").replace("'", "\\'") + "', 'Array(String)')"


# The most characters of keys one look-up puts in its query text. ClickHouse
# refuses to parse a query longer than max_query_size (256 KiB unless
# raised), and a batch of 20,000 events can hold that many calls' CallSids.
_MAX_KEYS_TEXT = 128 * 1024


def _string_lists(values: Sequence[str]) -> list[str]:
    """`_string_list` of `values` cut into as few parts as keep each under _MAX_KEYS_TEXT.

    For a look-up by a batch's keys that runs once per part. The usual batch
    fits in one, and costs nothing more than `_string_list`.
    """
    whole = _string_list(values)
    if len(whole) <= _MAX_KEYS_TEXT or len(values) <= 1:
        return [whole]
    half = len(values) // 2
    return _string_lists(values[:half]) + _string_lists(values[half:])


def to_seconds(moment: datetime) -> int:
    """A DateTime as read back (naive means UTC here) as Unix seconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _hour_of(moment: datetime) -> int:
    """The start of `moment`'s UTC hour, in Unix seconds (as DateTime64(3) stores it)."""
    return _stored_ms(moment) // 3_600_000 * 3600


def to_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def tz_literal(tz: str) -> str:
    """A time zone as an SQL string literal; only names zoneinfo knows pass."""
    if not valid_timezone(tz) or "'" in tz or "\\" in tz:
        raise ValueError(f"not a known time zone: {tz!r}")
    return f"'{tz}'"


def _finite(value: Any) -> float:
    number = float(value or 0)
    return 0.0 if math.isnan(number) or math.isinf(number) else number
