"""Analytics' ClickHouse: the schema migrations and every query, in one place.

Tables are qualified with the configured database. The consumer keeps one
fact per call in `call_facts` (its newest version also in `call_state`, by
CallSid, which the consumer's look-ups read) and writes a changed fact as
two rows: the previous version with sign -1 and the new one with sign +1.
A materialized view copies both into
`calls_by_client`, sorted by (clientId, startedAt) for the metrics, and
from there into the hourly sums of `client_hourly`. Metrics read the
current calls as the +1 rows that no -1 row cancels (`_current`); since a
cancelling row carries exactly the values of the row it cancels, any filter
treats both alike and nothing is counted twice, without FINAL. These tables
commit one by one; `repair` mends a call whose write stopped half way.

Timestamps cross the boundary as Unix milliseconds, which means the same on
chDB and on a server whatever either thinks the local time zone is. On chDB
(one engine per process, no sessions) every call is serialized with a lock.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import string
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import orjson
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from services.analytics.audit import AuditEntry, AuditQuery
from services.analytics.calls import CallFilter, CallRecord, Cursor, Summary
from services.analytics.campaigns import CampaignCalls
from services.analytics.clients import ClientSettings, LeadThresholds, valid_timezone
from services.analytics.config import Prices
from services.analytics.facts import FINAL_STATUSES, MISSED_STATUSES, CallFact
from services.analytics.metrics import Caller, CallerStats, Durations
from services.analytics.numbers import NumberAssignment
from switchboard.events import Event

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_FACT_COLUMNS = (
    "callSid",
    "clientId",
    "direction",
    "fromNumber",
    "toNumber",
    "forwardedTo",
    "status",
    "answered",
    "durationSec",
    "startedAt",
    "endedAt",
    "recorded",
    "callerCity",
    "callerState",
    "callerCountry",
    "routed",
    "campaign",
    "disposition",
    "recordingEnabled",
    "fallback",
    "dialStatus",
    "dialDurationSec",
    "dialBridged",
    "childStatus",
    "childDurationSec",
    "parentStatus",
    "parentDurationSec",
    "storedRecordings",
    "deletedRecordings",
    "recordingStored",
)
_ARRAY_COLUMNS = ("storedRecordings", "deletedRecordings")
_TIME_COLUMNS = ("startedAt", "endedAt")
_BOOL_COLUMNS = (
    "answered",
    "recorded",
    "routed",
    "recordingEnabled",
    "fallback",
    "recordingStored",
)

_DURATION_COLUMNS = ("durationSec", "dialDurationSec", "childDurationSec", "parentDurationSec")
_UTC_MS = pa.timestamp("ms", tz="UTC")


def _arrow_type(name: str) -> pa.DataType:
    if name in _TIME_COLUMNS:
        return _UTC_MS
    if name in _BOOL_COLUMNS:
        return pa.bool_()
    if name in _ARRAY_COLUMNS:
        return pa.list_(pa.string())
    if name in _DURATION_COLUMNS:
        return pa.uint32()
    return pa.string()


# call_facts' insert as Arrow: ClickHouse reads it column by column instead of
# parsing text (an insert of ~3,300 facts with the table's views: a median of
# 65 ms of CPU against 103 as JSON lines), and Python builds it in about half
# the time orjson takes to write the lines.
_FACT_ARROW = pa.schema(
    [
        *((name, _arrow_type(name)) for name in _FACT_COLUMNS),
        ("version", pa.uint64()),
        ("sign", pa.int8()),
        ("updatedAt", _UTC_MS),
    ]
)

_RECORD_SELECT = """
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status,
    answered, durationSec, toUnixTimestamp64Milli(startedAt) AS startedAtMs,
    recorded, callerCity, callerState, callerCountry, campaign, recordingStored
"""

# The consumer's look-ups and inserts are small (one batch): run on one
# thread each, they leave the other core to the consumer's Python and cost
# less in thread hand-offs than they could gain (measured on 2 cores).
_ONE_THREAD = {"max_threads": 1, "max_insert_threads": 1}
_ONE_THREAD_SQL = "SETTINGS max_threads = 1"

# Numbers Twilio reports for a withheld or unknown caller: not someone to rank.
ANONYMOUS_CALLERS = ("", "anonymous", "Anonymous", "restricted", "unknown", "+266696687")

# Tables that take a retention TTL, with the time column it counts from.
_RETENTION = (
    ("events", "occurredAt"),
    ("call_facts", "startedAt"),
    ("calls_by_client", "startedAt"),
    ("client_hourly", "hour"),
    ("conversions", "recordedAt"),
)

_MISSED_SQL = ", ".join(f"'{status}'" for status in MISSED_STATUSES)
_DECIDED_SQL = ", ".join(f"'{status}'" for status in FINAL_STATUSES)
_ANONYMOUS_SQL = ", ".join(f"'{number}'" for number in ANONYMOUS_CALLERS)


@dataclass(frozen=True)
class StoredFact:
    fact: CallFact
    version: int


@dataclass(frozen=True)
class Repair:
    """What `Store.repair` mended: calls whose copies disagreed, hourly sums that were off."""

    calls: tuple[str, ...]
    hourly_cells: int


@dataclass(frozen=True)
class CallPage:
    calls: list[CallRecord]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class GeoRow:
    country: str
    state: str
    city: str
    calls: int


@dataclass(frozen=True)
class FollowUp:
    """An answered call with `number` (either way) at `startedAt`."""

    clientId: str
    number: str
    startedAt: datetime


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _stored_ms(moment: datetime) -> int:
    """`moment` as a DateTime64(3) value: truncated to the millisecond, as ClickHouse does."""
    return (moment - _EPOCH) // _MILLISECOND


def _string_list(values: Sequence[str]) -> str:
    """An SQL expression of these strings as an Array(String), for `IN`.

    For the consumer's look-ups of a batch's hundreds of keys: binding them
    as a query parameter escapes them character by character in Python,
    and an array literal of that many elements costs ClickHouse more to
    parse than the look-up itself (~15 us a key). One string literal holding
    a JSON array, which JSONExtract reads at once, costs half of that; the
    primary key is still used (`IN` of a constant). Inside single quotes
    only the backslash and the quote need escaping.
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


def _fact_column(name: str, facts: Sequence[CallFact]) -> list[Any]:
    """One call_facts column of these facts, in the types its insert takes."""
    values = [getattr(fact, name) for fact in facts]
    if name in _TIME_COLUMNS:
        return [None if v is None else _stored_ms(v) for v in values]
    if name in _BOOL_COLUMNS:
        return [int(v) for v in values]
    if name in _ARRAY_COLUMNS:
        return [list(v) for v in values]
    return values


def to_seconds(moment: datetime) -> int:
    """A DateTime as read back (naive means UTC here) as Unix seconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _hour_of(moment: datetime) -> int:
    """The start of `moment`'s UTC hour, in Unix seconds (as DateTime64(3) stores it)."""
    return _stored_ms(moment) // 3_600_000 * 3600


def _partition_key(group_id: str, topic: str, partition: int) -> str:
    return orjson.dumps([group_id, topic, partition]).decode()


def to_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def connect(url: str) -> Client:
    """A clickhouse-connect client for CLICKHOUSE_URL (chdb:///folder or http://...)."""
    if url.startswith("chdb:"):
        return clickhouse_connect.get_client(dsn=url)
    # Without a session id the HTTP client may run queries from several threads.
    return clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)


def tz_literal(tz: str) -> str:
    """A time zone as an SQL string literal; only names zoneinfo knows pass."""
    if not valid_timezone(tz) or "'" in tz or "\\" in tz:
        raise ValueError(f"not a known time zone: {tz!r}")
    return f"'{tz}'"


def _finite(value: Any) -> float:
    number = float(value or 0)
    return 0.0 if math.isnan(number) or math.isinf(number) else number


class Store:
    """All of analytics' SQL. Thread-safe; on chDB calls run one at a time."""

    def __init__(
        self,
        client: Client,
        database: str,
        serialize: bool = True,
        events_client: Client | None = None,
    ) -> None:
        """`events_client`, a second connection, takes the events' inserts beside the rest."""
        if not _IDENTIFIER.match(database):
            raise ValueError(f"not a plain database identifier: {database!r}")
        self._client = client
        self.database = database
        self._closed = False
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialize else contextlib.nullcontext()
        )
        self._events_client = events_client or client
        self._events_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialize and events_client is not None else self._lock
        )
        self._events_writer = ThreadPoolExecutor(1, thread_name_prefix="analytics-events")
        # Entered around every call into ClickHouse (which runs without the
        # GIL), outside the store's lock: the consumer gives its writer's
        # turn at the GIL up there (consumer.WriterFirst).
        self.engine_calls: Callable[[], contextlib.AbstractContextManager[Any]] = (
            contextlib.nullcontext
        )

    @classmethod
    def open(cls, url: str, database: str) -> Store:
        # chDB takes any number of connections to the one engine of a process.
        return cls(connect(url), database, url.startswith("chdb:"), events_client=connect(url))

    def close(self) -> None:
        self._events_writer.shutdown(wait=True)
        with self._lock:
            if not self._closed:
                self._closed = True
                self._client.close()
                if self._events_client is not self._client:
                    self._events_client.close()

    # -- plumbing ---------------------------------------------------------

    def _query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.engine_calls(), self._lock:
            result = self._client.query(sql, parameters=parameters or {})
            return [tuple(row) for row in result.result_rows]

    def _command(self, sql: str) -> None:
        with self.engine_calls(), self._lock:
            self._client.command(sql)

    def _insert(self, table: str, rows: list[list[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self.engine_calls(), self._lock:
            self._client.insert(f"{self.database}.{table}", rows, column_names=list(columns))

    def _insert_json(
        self, table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert rows as JSON lines, which ClickHouse parses in its own (GIL-free) code.

        For rows of many columns this costs Python a fraction of building the
        native format column by column: orjson writes datetimes (ISO 8601,
        read with best_effort), booleans, tuples and strings as they are.
        """
        if not rows:
            return
        body = b"\n".join(map(orjson.dumps, rows))
        with self.engine_calls(), self._lock:
            self._client.raw_insert(
                f"{self.database}.{table}",
                list(columns),
                body,
                settings={"date_time_input_format": "best_effort", **_ONE_THREAD},
                fmt="JSONEachRow",
            )

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """One statement of a module that keeps its own SQL (privacy); its rows, if any."""
        return self._query(sql, parameters)

    def ping(self) -> None:
        """Raise unless ClickHouse answers a query."""
        self._query("SELECT 1")

    # -- migrations -------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; returns the names applied now."""
        self._command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._command(
            f"CREATE TABLE IF NOT EXISTS {self.database}.schema_migrations "
            "(name String, appliedAt DateTime64(3, 'UTC')) "
            "ENGINE = ReplacingMergeTree ORDER BY name"
        )
        done = {
            row[0] for row in self._query(f"SELECT name FROM {self.database}.schema_migrations")
        }
        applied = []
        for path in migration_files():
            if path.name in done:
                continue
            for statement in migration_statements(path, self.database):
                self._command(statement)
            self._insert(
                "schema_migrations", [[path.name, datetime.now(UTC)]], ("name", "appliedAt")
            )
            log.info("migration %s applied to %s", path.name, self.database)
            applied.append(path.name)
        return applied

    def applied_migrations(self) -> list[str]:
        rows = self._query(
            f"SELECT name FROM {self.database}.schema_migrations FINAL ORDER BY name"
        )
        return [row[0] for row in rows]

    def apply_retention(self, days: int) -> None:
        """Set (days > 0) or remove (0) the TTL that drops rows older than `days` days."""
        rows = self._query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            {"db": self.database},
        )
        engines = {name: engine for name, engine in rows}
        for table, column in _RETENTION:
            has_ttl = " TTL " in engines.get(table, "")
            if days > 0:
                self._command(
                    f"ALTER TABLE {self.database}.{table} "
                    f"MODIFY TTL toDateTime({column}) + INTERVAL {int(days)} DAY"
                )
            elif has_ttl:
                self._command(f"ALTER TABLE {self.database}.{table} REMOVE TTL")
        self.expire_call_state(days)

    def expire_call_state(self, days: int) -> None:
        """Delete from call_state the calls older than `days` days (0: keep all).

        call_state (EmbeddedRocksDB) has no TTL of its own, so the calls that
        call_facts' TTL drops are deleted from it by startedAt, the same
        horizon: at start-up (apply_retention) and periodically by the consumer.
        """
        if days > 0:
            self._command(
                f"DELETE FROM {self.database}.call_state "
                f"WHERE startedAt < now64(3) - INTERVAL {int(days)} DAY"
            )

    # -- the consumer's writes ---------------------------------------------

    def stored_event_ids(self, events: Sequence[Event]) -> set[str]:
        """The ids among `events` that are already in the events table.

        Looked up by the calls' CallSids (the table's sort key starts with
        it): a few hundred keys per batch instead of thousands of ids. An
        event without a CallSid is looked up by its id among those.
        """
        if not events:
            return set()
        wanted = {e.id for e in events}
        sids = sorted({e.callSid for e in events if e.callSid})
        sidless = sorted({e.id for e in events if not e.callSid})
        conditions = [f"callSid IN {keys}" for keys in _string_lists(sids)] if sids else []
        if sidless:
            conditions += [f"callSid = '' AND id IN {keys}" for keys in _string_lists(sidless)]
        found: set[str] = set()
        for condition in conditions:
            rows = self._query(
                f"SELECT DISTINCT id FROM {self.database}.events "
                f"WHERE {condition} {_ONE_THREAD_SQL}"
            )
            found.update(row[0] for row in rows if row[0] in wanted)
        return found

    def insert_events(
        self, events: Sequence[Event], payloads: Mapping[str, bytes] | None = None
    ) -> None:
        """Store events; the payload is the message as it arrived when given, else re-encoded.

        The messages go in as they are, and ClickHouse reads the columns out
        of them (events_arrived_mv): building the rows in Python cost more
        than the insert itself.
        """
        if not events:
            return
        raw = payloads or {}
        body = b"\n".join([raw.get(e.id) or e.to_json() for e in events])
        with self._events_lock:
            self._events_client.raw_insert(
                f"{self.database}.events_arrived",
                ["message"],
                body,
                fmt="JSONAsString",
                settings=_ONE_THREAD,
            )

    def begin_insert_events(
        self, events: Sequence[Event], payloads: Mapping[str, bytes] | None = None
    ) -> Future[None]:
        """`insert_events` in a thread of the store's own, done when the future is.

        On its own connection it runs beside the caller's next statements:
        on two cores the consumer's write of a batch was a fifth faster with
        the events' insert beside the facts' than after them.
        """
        return self._events_writer.submit(self.insert_events, events, payloads)

    def load_facts(self, call_sids: Iterable[str]) -> dict[str, StoredFact]:
        """The current fact (and its version) of each of these calls that has one.

        Read from call_state, the newest +1 row of each call in call_facts
        by key (migration 0013): in call_facts itself each key of a batch
        costs a granule of every column.
        """
        return self._read_facts("call_state", call_sids)

    def _read_facts(
        self, table: str, call_sids: Iterable[str], newest_only: str = ""
    ) -> dict[str, StoredFact]:
        sids = sorted(set(call_sids))
        if not sids:
            return {}
        selected = ", ".join(
            f"toUnixTimestamp64Milli({c})" if c in _TIME_COLUMNS else c for c in _FACT_COLUMNS
        )
        rows = [
            row
            for keys in _string_lists(sids)
            for row in self._query(
                f"SELECT {selected}, version FROM {self.database}.{table} "
                f"WHERE callSid IN {keys} {newest_only} {_ONE_THREAD_SQL}"
            )
        ]
        found = {}
        for row in rows:
            values = dict(zip(_FACT_COLUMNS, row[:-1], strict=True))
            for name in _TIME_COLUMNS:
                if values[name] is not None:
                    values[name] = from_ms(values[name])
            for name in _BOOL_COLUMNS:
                values[name] = bool(values[name])
            for name in _ARRAY_COLUMNS:
                values[name] = tuple(values[name])
            fact = CallFact.from_fields(values)
            found[fact.callSid] = StoredFact(fact, int(row[-1]))
        return found

    def insert_facts(
        self,
        facts: Sequence[StoredFact],
        previous: Mapping[str, StoredFact] | None = None,
    ) -> None:
        """Write new fact versions, each with the row that cancels its previous version.

        `previous` is what the caller read before folding (as `load_facts`
        returns it); without it the store reads it now. A version not newer
        than the stored one is not written: it could only count twice.
        """
        if not facts:
            return
        if previous is None:
            previous = self.load_facts(stored.fact.callSid for stored in facts)
        rows: list[tuple[CallFact, int, int]] = []  # (fact, version, sign)
        for stored in facts:
            before = previous.get(stored.fact.callSid)
            if before is not None:
                if before.version >= stored.version:
                    log.warning(
                        "fact of %s not written: version %d is not newer than stored %d",
                        stored.fact.callSid,
                        stored.version,
                        before.version,
                    )
                    continue
                rows.append((before.fact, before.version, -1))
            rows.append((stored.fact, stored.version, 1))
        self._insert_fact_rows(rows)

    def _insert_fact_rows(self, rows: Sequence[tuple[CallFact, int, int]]) -> None:
        """(fact, version, sign) rows into call_facts, and so into every view fed from it."""
        if not rows:
            return
        fields = [fact.__dict__ for fact, _, _ in rows]
        columns = [
            pa.array([f[name] for f in fields], type=_FACT_ARROW.field(name).type)
            for name in _FACT_COLUMNS
        ]
        columns.append(pa.array([version for _, version, _ in rows], type=pa.uint64()))
        columns.append(pa.array([sign for _, _, sign in rows], type=pa.int8()))
        columns.append(pa.array([datetime.now(UTC)] * len(rows), type=_UTC_MS))
        body = pa.BufferOutputStream()
        with pa.ipc.new_stream(body, _FACT_ARROW) as stream:
            stream.write_batch(pa.record_batch(columns, schema=_FACT_ARROW))
        with self.engine_calls(), self._lock:
            self._client.raw_insert(
                f"{self.database}.call_facts",
                _FACT_ARROW.names,
                body.getvalue().to_pybytes(),
                settings=_ONE_THREAD,
                fmt="ArrowStream",
            )

    # -- writes that stopped half way ---------------------------------------

    def record_write_started(
        self, group_id: str, end_offsets: Mapping[tuple[str, int], int]
    ) -> None:
        """Before a batch is written: the offsets (per topic and partition) it will commit.

        As JSON lines: clickhouse-connect's row insert first
        asks for the table's column types, which made this 20 ms a batch
        between the consumer's other inserts instead of ~6.
        """
        now = datetime.now(UTC)
        self._insert_json(
            "writes_started",
            ("partitionKey", "groupId", "topic", "partition", "endOffset", "startedAt"),
            [
                {
                    "partitionKey": _partition_key(group_id, topic, partition),
                    "groupId": group_id,
                    "topic": topic,
                    "partition": partition,
                    "endOffset": end,
                    "startedAt": now,
                }
                for (topic, partition), end in sorted(end_offsets.items())
            ],
        )

    def writes_started(
        self, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """The end offset of the last write started on each of these partitions, where one was."""
        keys = [_partition_key(group_id, topic, partition) for topic, partition in partitions]
        if not keys:
            return {}
        rows = self._query(
            f"SELECT topic, partition, endOffset FROM {self.database}.writes_started "
            f"WHERE partitionKey IN {_string_list(sorted(keys))}"
        )
        return {(topic, int(partition)): int(end) for topic, partition, end in rows}

    def repair(self, events: Sequence[Event]) -> Repair:
        """Mend what a write of these events that stopped half way may have left.

        A write commits table by table: call_facts, each materialized view's
        table (call_state, calls_by_client, from that client_hourly), then
        events. A process killed in between (or a write that failed half way)
        leaves a call whose copies disagree, and folding its events again
        cannot mend that: with call_state ahead the fold changes nothing and
        calls_by_client stays stale, with call_state behind the same new
        version goes into calls_by_client twice and counts twice.

        The newest version stored of a call (in call_facts or call_state) is
        the one that stands. A call is in line when call_facts and
        call_state both hold that version and calls_by_client holds exactly
        one +1 row of it, every other version there cancelled. For the calls
        that are not, their calls_by_client rows are deleted and the standing
        version is written again through call_facts (which puts it back in
        call_state and calls_by_client).

        client_hourly may have taken the broken write's rows alone, and for
        any client: a call's new client is known only once folded. But each
        version's startedAt is the earliest of its events' times, so every
        hour the broken write touched is the hour of one of these events or
        of a version stored before; those hours are recounted from
        calls_by_client for every client (`_recount_hours`).

        Each step reads the state it mends, so a repair that is itself
        interrupted is finished by the next one; on calls in line it
        changes nothing.
        """
        sids = sorted({event.callSid for event in events if event.callSid})
        hours = {_hour_of(event.occurred_at) for event in events if event.callSid}
        if not sids:
            return Repair((), 0)
        in_state = self.load_facts(sids)
        in_facts = self._read_facts(
            "call_facts", sids, "AND sign = 1 ORDER BY version DESC LIMIT 1 BY callSid"
        )
        standing: dict[str, StoredFact] = {}
        for sid in sids:
            found = [f for f in (in_state.get(sid), in_facts.get(sid)) if f is not None]
            hours.update(_hour_of(stored.fact.startedAt) for stored in found)
            if found:
                standing[sid] = max(found, key=lambda stored: stored.version)
        copies: dict[str, dict[int, list[int]]] = {}  # callSid -> version -> [+1 rows, -1 rows]
        for sid, version, plus, minus, hour in [
            row
            for keys in _string_lists(sids)
            for row in self._query(
                f"SELECT callSid, version, countIf(sign = 1), countIf(sign = -1), "
                f"toUnixTimestamp(toStartOfHour(startedAt)) AS hour "
                f"FROM {self.database}.calls_by_client WHERE callSid IN {keys} "
                "GROUP BY callSid, version, hour"
            )
        ]:
            rows = copies.setdefault(sid, {}).setdefault(int(version), [0, 0])
            rows[0] += int(plus)
            rows[1] += int(minus)
            hours.add(int(hour))

        def in_line(sid: str) -> bool:
            now = standing.get(sid)
            versions = copies.get(sid, {})
            if now is None:
                return not versions
            stored = (in_state.get(sid), in_facts.get(sid))
            return (
                all(f is not None and f.version == now.version for f in stored)
                and versions.get(now.version) == [1, 0]
                and all(plus == minus for v, (plus, minus) in versions.items() if v != now.version)
            )

        mended = [sid for sid in sids if not in_line(sid)]
        if mended:
            for keys in _string_lists(mended):
                self._command(
                    f"DELETE FROM {self.database}.calls_by_client WHERE callSid IN {keys}"
                )
            self._insert_fact_rows(
                [
                    (standing[sid].fact, standing[sid].version, 1)
                    for sid in mended
                    if sid in standing
                ]
            )
        repair = Repair(tuple(mended), self._recount_hours(sorted(hours)))
        if repair.calls or repair.hourly_cells:
            log.warning(
                "after a write that stopped half way: %d calls mended (%s), "
                "%d hourly sums corrected",
                len(mended),
                ", ".join(mended[:10]) + (" ..." if len(mended) > 10 else ""),
                repair.hourly_cells,
            )
        return repair

    def _recount_hours(self, hours: Sequence[int]) -> int:
        """Set client_hourly in these hours (Unix seconds) to calls_by_client's sums, every client.

        The sums are computed by client_hourly_mv's own query (read from the
        system tables, so it cannot drift from the view), restricted to the
        hours; the difference from what client_hourly holds is inserted.
        Returns how many (client, hour) cells were off.
        """
        if not hours:
            return 0
        definition = self._query(
            "SELECT as_select FROM system.tables "
            "WHERE database = {db:String} AND name = 'client_hourly_mv'",
            {"db": self.database},
        )[0][0]
        wanted = "toUnixTimestamp(hour) IN {hours:Array(UInt32)}"
        params = {"hours": list(hours)}
        with self.engine_calls(), self._lock:
            expected = self._client.query(
                f"SELECT * FROM ({definition}) WHERE {wanted}", parameters=params
            )
        measures = list(expected.column_names[2:])
        sums = ", ".join(f"sum({name})" for name in measures)
        held = {
            (row[0], int(row[1])): row[2:]
            for row in self._query(
                f"SELECT clientId, toUnixTimestamp(hour), {sums} "
                f"FROM {self.database}.client_hourly WHERE {wanted} GROUP BY clientId, hour",
                params,
            )
        }
        should = {(row[0], to_seconds(row[1])): row[2:] for row in expected.result_rows}
        zero = [0] * len(measures)
        corrections = []
        for cell in sorted(set(held) | set(should)):
            diff = [
                int(a) - int(b)
                for a, b in zip(should.get(cell, zero), held.get(cell, zero), strict=True)
            ]
            if any(diff):
                client_id, hour = cell
                corrections.append([client_id, datetime.fromtimestamp(hour, UTC), *diff])
        self._insert("client_hourly", corrections, ("clientId", "hour", *measures))
        return len(corrections)

    @staticmethod
    def _fact_row(fact: CallFact) -> list[Any]:
        """A fact as one row of call_facts' fact columns (for inserts row by row)."""
        return [_fact_column(name, [fact])[0] for name in _FACT_COLUMNS]

    def upsert_assignments(self, assignments: Sequence[NumberAssignment]) -> None:
        rows = [
            [a.phoneNumber, a.assignedAt, a.clientId, a.campaign, a.releasedAt, a.version]
            for a in assignments
        ]
        self._insert(
            "number_assignments",
            rows,
            ("phoneNumber", "assignedAt", "clientId", "campaign", "releasedAt", "version"),
        )

    def load_assignments(
        self, numbers: Iterable[str] | None = None, client_id: str | None = None
    ) -> list[NumberAssignment]:
        """Assignments of these numbers (all when None), of one client when given."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if numbers is not None:
            wanted = sorted(set(numbers))
            if not wanted:
                return []
            clauses.append("phoneNumber IN {numbers:Array(String)}")
            params["numbers"] = wanted
        if client_id is not None:
            clauses.append("clientId = {clientId:String}")
            params["clientId"] = client_id
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            "SELECT phoneNumber, toUnixTimestamp64Milli(assignedAt), clientId, campaign, "
            "toUnixTimestamp64Milli(releasedAt), version "
            f"FROM {self.database}.number_assignments FINAL {where}",
            params,
        )
        return [
            NumberAssignment(
                phoneNumber=number,
                assignedAt=from_ms(assigned),
                clientId=client,
                campaign=campaign,
                releasedAt=from_ms(released) if released is not None else None,
                version=int(version),
            )
            for number, assigned, client, campaign, released, version in rows
        ]

    def calls_to_attribute(self, assignment: NumberAssignment) -> list[str]:
        """CallSids of calls on this number, in its period, that miss a client or campaign."""
        clauses = [
            "((direction != 'outbound' AND toNumber = {number:String}) OR "
            "(direction = 'outbound' AND fromNumber = {number:String}))",
            "startedAt >= fromUnixTimestamp64Milli({assignedMs:Int64}, 'UTC')",
            "disposition != 'unassigned'",
            "(clientId = '' OR (clientId = {clientId:String} AND campaign = ''))",
        ]
        params: dict[str, Any] = {
            "number": assignment.phoneNumber,
            "assignedMs": to_ms(assignment.assignedAt),
            "clientId": assignment.clientId,
        }
        if assignment.releasedAt is not None:
            clauses.append("startedAt < fromUnixTimestamp64Milli({releasedMs:Int64}, 'UTC')")
            params["releasedMs"] = to_ms(assignment.releasedAt)
        rows = self._query(f"SELECT callSid {self._current_sql(clauses)}", params)
        return [row[0] for row in rows]

    def upsert_client_settings(self, settings: Sequence[ClientSettings]) -> None:
        rows = [
            [
                s.clientId,
                s.name,
                s.timezone,
                s.valuePerConversion,
                s.leadShortSec,
                s.leadLongSec,
                s.leadQualifiedSec,
                int(s.deleted),
                s.version,
                s.retentionDays,
                s.purgeAfter,
            ]
            for s in settings
        ]
        self._insert(
            "client_settings",
            rows,
            (
                "clientId",
                "name",
                "timezone",
                "valuePerConversion",
                "leadShortSec",
                "leadLongSec",
                "leadQualifiedSec",
                "deleted",
                "version",
                "retentionDays",
                "purgeAfter",
            ),
        )

    def client_settings(self, client_id: str | None = None) -> dict[str, ClientSettings]:
        """Settings by clientId: of one client when given, else of every client."""
        where = "WHERE clientId = {clientId:String}" if client_id is not None else ""
        rows = self._query(
            "SELECT clientId, name, timezone, valuePerConversion, leadShortSec, leadLongSec, "
            f"leadQualifiedSec, deleted, version, retentionDays, purgeAfter "
            f"FROM {self.database}.client_settings FINAL {where}",
            {"clientId": client_id} if client_id is not None else {},
        )
        found = {}
        for row in rows:
            client, name, tz, value, short, long, qualified, deleted, version = row[:9]
            retention_days, purge_after = row[9:]
            found[client] = ClientSettings(
                clientId=client,
                name=name,
                timezone=tz,
                valuePerConversion=value,
                leadShortSec=short,
                leadLongSec=long,
                leadQualifiedSec=qualified,
                deleted=bool(deleted),
                version=int(version),
                retentionDays=retention_days,
                purgeAfter=purge_after,
            )
        return found

    def record_conversion(self, client_id: str, call_sid: str, value: float) -> datetime:
        now = datetime.now(UTC)
        self._insert(
            "conversions",
            [[client_id, call_sid, float(value), now, to_ms(now)]],
            ("clientId", "callSid", "value", "recordedAt", "version"),
        )
        return now

    # -- the API's reads ----------------------------------------------------

    def _where(self, flt: CallFilter) -> tuple[list[str], dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if flt.client_id is not None:
            clauses.append("clientId = {clientId:String}")
            params["clientId"] = flt.client_id
        if flt.direction is not None:
            clauses.append("direction = {direction:String}")
            params["direction"] = flt.direction
        if flt.status is not None:
            clauses.append("status = {status:String}")
            params["status"] = flt.status
        if flt.start is not None:
            clauses.append("startedAt >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')")
            params["fromMs"] = to_ms(flt.start)
        if flt.end is not None:
            clauses.append("startedAt < fromUnixTimestamp64Milli({toMs:Int64}, 'UTC')")
            params["toMs"] = to_ms(flt.end)
        if flt.campaign is not None:
            clauses.append("campaign = {campaign:String}")
            params["campaign"] = flt.campaign
        if flt.min_duration_sec is not None:
            clauses.append("durationSec >= {minDuration:UInt32}")
            params["minDuration"] = flt.min_duration_sec
        if flt.caller is not None:
            # The other party: the caller of an inbound call, the called of an outbound one.
            clauses.append("(fromNumber = {caller:String} OR toNumber = {caller:String})")
            params["caller"] = flt.caller
        return clauses, params

    def _current_sql(self, clauses: Sequence[str]) -> str:
        """FROM/WHERE selecting the current version of each call that matches `clauses`.

        The +1 rows, less those a -1 row cancels (same callSid and version).
        A cancelling row holds the values of the row it cancels, so it
        matches the same clauses, and looking for it among them is enough.
        """
        table = f"{self.database}.calls_by_client"
        matching = " AND ".join(clauses) or "1"
        return (
            f"FROM {table} WHERE sign = 1 AND {matching} AND (callSid, version) NOT IN "
            f"(SELECT callSid, version FROM {table} WHERE sign = -1 AND {matching})"
        )

    def _current(self, flt: CallFilter, extra: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
        clauses, params = self._where(flt)
        return self._current_sql([*clauses, *extra]), params

    def list_calls(self, flt: CallFilter, limit: int, after: Cursor | None = None) -> CallPage:
        """Calls newest first (startedAt, then callSid, descending), `limit` at most."""
        extra = []
        cursor_params: dict[str, Any] = {}
        if after is not None:
            extra.append(
                "(startedAt, callSid) < "
                "(fromUnixTimestamp64Milli({afterMs:Int64}, 'UTC'), {afterSid:String})"
            )
            cursor_params = {"afterMs": after.started_ms, "afterSid": after.call_sid}
        current, params = self._current(flt, extra)
        rows = self._query(
            f"SELECT {_RECORD_SELECT} {current} "
            f"ORDER BY startedAt DESC, callSid DESC LIMIT {int(limit) + 1}",
            {**params, **cursor_params},
        )
        calls = [_record(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = calls[-1] if calls else None
        cursor = Cursor(to_ms(last.startedAt), last.callSid) if more and last else None
        return CallPage(calls, cursor)

    def iter_calls(
        self,
        flt: CallFilter,
        limit: int | None = None,
        after: Cursor | None = None,
        page_size: int = 5000,
    ) -> Iterator[CallRecord]:
        """Every matching call, newest first, fetched a page at a time.

        Pages keep the lock short: an export streamed to a slow client never
        holds the engine while the consumer wants to write.
        """
        cursor = after
        remaining = limit
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page = self.list_calls(flt, size, cursor)
            yield from page.calls
            if remaining is not None:
                remaining -= len(page.calls)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_call(self, call_sid: str) -> CallRecord | None:
        rows = self._query(
            f"SELECT {_RECORD_SELECT} FROM {self.database}.calls "
            "WHERE callSid = {callSid:String} LIMIT 1",
            {"callSid": call_sid},
        )
        return _record(rows[0]) if rows else None

    def summary(self, flt: CallFilter) -> Summary:
        current, params = self._current(flt)
        rows = self._query(
            f"""
            SELECT
                count(),
                countIf(direction = 'inbound'),
                countIf(direction = 'outbound'),
                countIf(status = 'completed'),
                countIf(status IN ({_MISSED_SQL})),
                sum(durationSec),
                countIf(answered = 1),
                countIf(status = 'unrouted')
            {current}
            """,
            params,
        )
        total, inbound, outbound, completed, missed, duration, answered, unrouted = (
            int(v or 0) for v in rows[0]
        )
        return Summary.compute(
            total_calls=total,
            inbound=inbound,
            outbound=outbound,
            completed=completed,
            missed=missed,
            total_duration_sec=duration,
            answered=answered,
            unrouted=unrouted,
        )

    def timeseries(self, flt: CallFilter, interval: str, tz: str) -> list[tuple[Any, ...]]:
        """(bucket key, total, inbound, outbound, completed, missed, answered, durationSec)."""
        zone = tz_literal(tz)
        key = {
            "hour": f"toUnixTimestamp(toStartOfHour(startedAt, {zone}))",
            "day": f"toString(toDate(startedAt, {zone}))",
            "month": f"toString(toStartOfMonth(startedAt, {zone}))",
        }[interval]
        current, params = self._current(flt)
        return self._query(
            f"""
            SELECT
                {key} AS bucket,
                count(),
                countIf(direction = 'inbound'),
                countIf(direction = 'outbound'),
                countIf(status = 'completed'),
                countIf(status IN ({_MISSED_SQL})),
                countIf(answered = 1),
                sum(durationSec)
            {current}
            GROUP BY bucket
            ORDER BY bucket
            """,
            params,
        )

    def durations(self, flt: CallFilter) -> Durations:
        """Talk time of the answered calls: total, mean, median and 90th percentile.

        Percentiles interpolate between neighbours (as numpy's default and
        a spreadsheet's PERCENTILE.INC do).
        """
        current, params = self._current(flt, ["answered = 1"])
        rows = self._query(
            "SELECT count(), sum(durationSec), avg(durationSec), "
            "quantileExactInclusive(0.5)(durationSec), quantileExactInclusive(0.9)(durationSec) "
            f"{current}",
            params,
        )
        calls, total, mean, median, p90 = rows[0]
        return Durations(
            calls=int(calls or 0),
            totalSec=int(total or 0),
            avgSec=round(_finite(mean), 1),
            medianSec=round(_finite(median), 1),
            p90Sec=round(_finite(p90), 1),
        )

    def peak_hours(self, flt: CallFilter, tz: str) -> dict[tuple[int, int], tuple[int, int]]:
        """{(dayOfWeek 1=Monday..7, hour 0-23): (calls, answered)} in the time zone."""
        zone = tz_literal(tz)
        current, params = self._current(flt)
        rows = self._query(
            f"SELECT toDayOfWeek(startedAt, 0, {zone}) AS day, toHour(startedAt, {zone}) AS hour, "
            f"count(), countIf(answered = 1) {current} GROUP BY day, hour",
            params,
        )
        return {(int(d), int(h)): (int(c), int(a)) for d, h, c, a in rows}

    def _caller_scope(self, flt: CallFilter) -> tuple[str, dict[str, Any], str]:
        """Inbound calls with a known caller up to the range's end (for first-ever calls)."""
        history = CallFilter(
            client_id=flt.client_id,
            end=flt.end,
            campaign=flt.campaign,
            status=flt.status,
            min_duration_sec=flt.min_duration_sec,
        )
        current, params = self._current(
            history, ["direction = 'inbound'", f"fromNumber NOT IN ({_ANONYMOUS_SQL})"]
        )
        in_range = "1"
        if flt.start is not None:
            in_range = "startedAt >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')"
            params["fromMs"] = to_ms(flt.start)
        return current, params, in_range

    def top_callers(self, flt: CallFilter, limit: int) -> tuple[list[Caller], CallerStats]:
        """The callers with most calls in the range, and the stats over all of them.

        One scan: the stats are window aggregates over every caller, taken
        before LIMIT keeps the top ones.
        """
        current, params, in_range = self._caller_scope(flt)
        first_in_range = (
            "1" if flt.start is None else "first >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')"
        )
        rows = self._query(
            f"""
            SELECT
                fromNumber, calls, answered,
                toUnixTimestamp64Milli(last), toUnixTimestamp64Milli(first),
                count() OVER (), countIf(calls >= 2) OVER (),
                countIf({first_in_range}) OVER (), sum(calls) OVER ()
            FROM (
                SELECT
                    fromNumber,
                    countIf({in_range}) AS calls,
                    countIf({in_range} AND answered = 1) AS answered,
                    maxIf(startedAt, {in_range}) AS last,
                    min(startedAt) AS first
                {current}
                GROUP BY fromNumber
                HAVING calls > 0
            )
            ORDER BY calls DESC, last DESC, fromNumber
            LIMIT {int(limit)}
            """,
            params,
        )
        callers = [
            Caller(number, int(calls), int(answered), from_ms(last), from_ms(first))
            for number, calls, answered, last, first, *_ in rows
        ]
        unique, repeat, first_time, total = (int(v) for v in rows[0][5:]) if rows else (0,) * 4
        stats = CallerStats(
            uniqueCallers=unique,
            repeatCallers=repeat,
            firstTimeCallers=first_time,
            firstTimeCalls=first_time,
            totalCalls=total,
        )
        return callers, stats

    def geography(self, flt: CallFilter) -> tuple[list[GeoRow], int]:
        """Inbound calls by (country, state, city); and how many had no country."""
        current, params = self._current(flt, ["direction = 'inbound'"])
        rows = self._query(
            "SELECT callerCountry, callerState, callerCity, count() "
            f"{current} GROUP BY callerCountry, callerState, callerCity",
            params,
        )
        places = [GeoRow(country, state, city, int(n)) for country, state, city, n in rows]
        unknown = sum(place.calls for place in places if not place.country)
        return [place for place in places if place.country], unknown

    def lead_buckets(
        self,
        flt: CallFilter,
        thresholds: LeadThresholds,
        qualified_by_client: Mapping[str, int] | None = None,
    ) -> tuple[list[int], int, int]:
        """(calls per talk-time bucket, decided calls, qualified leads).

        `qualified_by_client` gives some clients their own qualifying talk
        time (across clients); the others use `thresholds.qualified_sec`.
        """
        qualified, q_params = self._qualified_sql(thresholds, qualified_by_client)
        current, params = self._current(flt, [f"status IN ({_DECIDED_SQL})"])
        rows = self._query(
            f"""
            SELECT
                countIf(durationSec < {{shortSec:UInt32}}),
                countIf(durationSec >= {{shortSec:UInt32}} AND durationSec < {{longSec:UInt32}}),
                countIf(durationSec >= {{longSec:UInt32}}),
                count(),
                countIf({qualified})
            {current}
            """,
            {
                **params,
                **q_params,
                "shortSec": thresholds.short_sec,
                "longSec": thresholds.long_sec,
            },
        )
        short, medium, long, decided, leads = (int(v or 0) for v in rows[0])
        return [short, medium, long], decided, leads

    @staticmethod
    def _qualified_sql(
        thresholds: LeadThresholds, by_client: Mapping[str, int] | None
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"qualifiedSec": thresholds.qualified_sec}
        if not by_client:
            return "answered = 1 AND durationSec >= {qualifiedSec:UInt32}", params
        params["qClients"] = list(by_client)
        params["qSeconds"] = [int(v) for v in by_client.values()]
        return (
            "answered = 1 AND durationSec >= transform(clientId, {qClients:Array(String)}, "
            "{qSeconds:Array(UInt32)}, {qualifiedSec:UInt32})",
            params,
        )

    def campaign_calls(
        self,
        flt: CallFilter,
        thresholds: LeadThresholds,
        prices: Prices,
        qualified_by_client: Mapping[str, int] | None = None,
    ) -> list[CampaignCalls]:
        """Per (client, campaign): calls, answered, qualified, usage cost, conversions, value."""
        qualified, q_params = self._qualified_sql(thresholds, qualified_by_client)
        current, params = self._current(flt, ["clientId != ''"])
        price_params = {
            "inRate": prices.inbound_per_min,
            "outRate": prices.outbound_per_min,
            "recRate": prices.recording_per_min,
        }
        usage = (
            "ceil(greatest(parentDurationSec, durationSec) / 60) * "
            "if(direction = 'outbound', {outRate:Float64}, {inRate:Float64}) + "
            "if(direction = 'inbound' AND answered = 1, "
            "ceil(durationSec / 60) * {outRate:Float64}, 0) + "
            "if(recorded = 1, ceil(durationSec / 60) * {recRate:Float64}, 0)"
        )
        conversion_where = "WHERE clientId = {clientId:String}" if flt.client_id else ""
        rows = self._query(
            f"""
            SELECT clientId, campaign, count(), countIf(answered = 1), countIf({qualified}),
                   sum({usage}), countIf(v.callSid != ''), sum(v.value)
            FROM (
                SELECT callSid, clientId, campaign, answered, durationSec, parentDurationSec,
                       direction, recorded
                {current}
            ) AS c
            LEFT JOIN (
                SELECT callSid, argMax(value, version) AS value
                FROM {self.database}.conversions {conversion_where}
                GROUP BY callSid
            ) AS v ON v.callSid = c.callSid
            GROUP BY clientId, campaign
            """,
            {**params, **q_params, **price_params},
        )
        return [
            CampaignCalls(
                client,
                campaign,
                int(calls),
                int(answered),
                int(leads),
                float(cost or 0),
                int(conversions),
                float(value or 0),
            )
            for client, campaign, calls, answered, leads, cost, conversions, value in rows
        ]

    def missed_calls(self, flt: CallFilter, limit: int) -> list[CallRecord]:
        """Missed calls (no-answer, busy, failed, canceled), newest first."""
        current, params = self._current(flt, [f"status IN ({_MISSED_SQL})"])
        rows = self._query(
            f"SELECT {_RECORD_SELECT} {current} ORDER BY startedAt DESC, callSid DESC "
            f"LIMIT {int(limit)}",
            params,
        )
        return [_record(row) for row in rows]

    def follow_ups(
        self, client_ids: Sequence[str], numbers: Sequence[str], since: datetime
    ) -> list[FollowUp]:
        """Answered calls since `since` from (inbound) or to (outbound) these numbers."""
        if not numbers:
            return []
        clauses = [
            "answered = 1",
            "startedAt >= fromUnixTimestamp64Milli({sinceMs:Int64}, 'UTC')",
            "((direction = 'inbound' AND fromNumber IN {numbers:Array(String)}) OR "
            "(direction = 'outbound' AND toNumber IN {numbers:Array(String)}))",
            "clientId IN {clients:Array(String)}",
        ]
        rows = self._query(
            "SELECT clientId, if(direction = 'inbound', fromNumber, toNumber), "
            f"toUnixTimestamp64Milli(startedAt) {self._current_sql(clauses)}",
            {
                "sinceMs": to_ms(since),
                "numbers": sorted(set(numbers)),
                "clients": sorted(set(client_ids)),
            },
        )
        return [FollowUp(client, number, from_ms(ms)) for client, number, ms in rows]

    def call_client(self, call_sid: str) -> str | None:
        """The client a call belongs to ('' for none); None when there is no such call."""
        call = self.get_call(call_sid)
        return None if call is None else (call.clientId or "")

    # -- the read audit (services/analytics/audit.py) ---------------------------

    def insert_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._insert(
            "audit_log",
            [
                [
                    e.id,
                    e.at,
                    e.actor,
                    e.action,
                    e.target_type,
                    e.target_id,
                    e.client_id or "",
                    orjson.dumps(e.details).decode(),
                ]
                for e in entries
            ],
            ("id", "at", "actor", "action", "targetType", "targetId", "clientId", "details"),
        )

    def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries that match `query`, newest first."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (
            ("clientId", query.client_id),
            ("action", query.action),
            ("actor", query.actor),
        ):
            if value is not None:
                clauses.append(f"{column} = {{{column}:String}}")
                params[column] = value
        if query.start is not None:
            clauses.append("at >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')")
            params["fromMs"] = to_ms(query.start)
        if query.end is not None:
            clauses.append("at < fromUnixTimestamp64Milli({toMs:Int64}, 'UTC')")
            params["toMs"] = to_ms(query.end)
        if query.before is not None:
            clauses.append("id < {before:UInt64}")
            params["before"] = query.before
        rows = self._query(
            "SELECT id, toUnixTimestamp64Milli(at), actor, action, targetType, targetId, "
            f"clientId, details FROM {self.database}.audit_log "
            f"WHERE {' AND '.join(clauses) or '1'} ORDER BY id DESC LIMIT {int(query.limit)}",
            params,
        )
        return [
            AuditEntry(
                id=int(entry_id),
                at=from_ms(int(at_ms)),
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=target_id,
                client_id=client_id or None,
                details=orjson.loads(details),
            )
            for entry_id, at_ms, actor, action, target_type, target_id, client_id, details in rows
        ]

    # -- counts the tests and operators look at ---------------------------------

    def count_events(self) -> int:
        return int(self._query(f"SELECT count() FROM {self.database}.events FINAL")[0][0])

    def count_calls(self) -> int:
        return int(self._query(f"SELECT count() FROM {self.database}.calls")[0][0])

    def count_fact_versions(self) -> int:
        """Rows in call_facts that carry a version (+1), superseded ones included."""
        return int(
            self._query(f"SELECT count() FROM {self.database}.call_facts WHERE sign = 1")[0][0]
        )


def _record(row: tuple[Any, ...]) -> CallRecord:
    (
        call_sid,
        client_id,
        direction,
        from_number,
        to_number,
        forwarded_to,
        status,
        answered,
        duration,
        started_ms,
        recorded,
        city,
        state,
        country,
        campaign,
        recording_stored,
    ) = row
    return CallRecord(
        callSid=call_sid,
        clientId=client_id or None,
        direction=direction,
        fromNumber=from_number,
        toNumber=to_number,
        forwardedTo=forwarded_to or None,
        status=status,
        answered=bool(answered),
        durationSec=int(duration),
        startedAt=from_ms(int(started_ms)),
        recorded=bool(recorded),
        callerCity=city,
        callerState=state,
        callerCountry=country,
        campaign=campaign,
        recordingStored=bool(recording_stored),
    )


def migration_files() -> list[Path]:
    files = sorted(p for p in MIGRATIONS_DIR.glob("*.sql"))
    for path in files:
        if not _MIGRATION_NAME.match(path.name):
            raise ValueError(f"migration file name must be NNNN_name.sql: {path.name}")
    return files


def migration_statements(path: Path, database: str) -> list[str]:
    """The file's statements with `${database}` filled in and comments dropped."""
    text = string.Template(path.read_text()).substitute(database=database)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]
