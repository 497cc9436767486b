"""Analytics' ClickHouse: the schema migrations and every query, in one place.

Tables are qualified with the configured database. Call facts are always read
through the `calls` view (`call_facts FINAL`), so a call whose fact was
written several times counts once. Timestamps cross the boundary as Unix
milliseconds, which means the same on chDB and on a server whatever either
thinks the local time zone is. On chDB (one engine per process, no sessions)
every call is serialized with a lock.
"""

from __future__ import annotations

import contextlib
import logging
import re
import string
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from services.analytics.calls import CallFilter, CallRecord, Cursor, Summary
from services.analytics.facts import MISSED_STATUSES, CallFact
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
)
_TIME_COLUMNS = ("startedAt", "endedAt")
_BOOL_COLUMNS = ("answered", "recorded", "routed", "recordingEnabled", "fallback")

_EVENT_COLUMNS = (
    "id",
    "type",
    "version",
    "callSid",
    "clientId",
    "occurredAt",
    "source",
    "requestId",
    "payload",
)

_RECORD_SELECT = """
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status,
    answered, durationSec, toUnixTimestamp64Milli(startedAt) AS startedAtMs,
    recorded, callerCity, callerState, callerCountry
"""


@dataclass(frozen=True)
class StoredFact:
    fact: CallFact
    version: int


@dataclass(frozen=True)
class CallPage:
    calls: list[CallRecord]
    next_cursor: Cursor | None


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def connect(url: str) -> Client:
    """A clickhouse-connect client for CLICKHOUSE_URL (chdb:///folder or http://...)."""
    if url.startswith("chdb:"):
        return clickhouse_connect.get_client(dsn=url)
    # Without a session id the HTTP client may run queries from several threads.
    return clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)


class Store:
    """All of analytics' SQL. Thread-safe; on chDB calls run one at a time."""

    def __init__(self, client: Client, database: str, serialize: bool = True) -> None:
        if not _IDENTIFIER.match(database):
            raise ValueError(f"not a plain database identifier: {database!r}")
        self._client = client
        self.database = database
        self._closed = False
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialize else contextlib.nullcontext()
        )

    @classmethod
    def open(cls, url: str, database: str) -> Store:
        return cls(connect(url), database, serialize=url.startswith("chdb:"))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._client.close()

    # -- plumbing ---------------------------------------------------------

    def _query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            result = self._client.query(sql, parameters=parameters or {})
            return [tuple(row) for row in result.result_rows]

    def _command(self, sql: str) -> None:
        with self._lock:
            self._client.command(sql)

    def _insert(self, table: str, rows: list[list[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._lock:
            self._client.insert(f"{self.database}.{table}", rows, column_names=list(columns))

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

    # -- the consumer's writes ---------------------------------------------

    def stored_event_ids(self, events: Sequence[Event]) -> set[str]:
        """The ids among `events` that are already in the events table."""
        if not events:
            return set()
        rows = self._query(
            f"SELECT DISTINCT id FROM {self.database}.events "
            "WHERE callSid IN {sids:Array(String)} AND id IN {ids:Array(String)}",
            {
                "sids": sorted({e.callSid or "" for e in events}),
                "ids": sorted({e.id for e in events}),
            },
        )
        return {row[0] for row in rows}

    def insert_events(self, events: Sequence[Event]) -> None:
        rows = [
            [
                e.id,
                e.type,
                e.version,
                e.callSid or "",
                e.clientId or "",
                e.occurred_at,
                e.source,
                e.requestId or "",
                e.to_json().decode(),
            ]
            for e in events
        ]
        self._insert("events", rows, _EVENT_COLUMNS)

    def load_facts(self, call_sids: Iterable[str]) -> dict[str, StoredFact]:
        """The current fact (and its version) of each of these calls that has one."""
        sids = sorted(set(call_sids))
        if not sids:
            return {}
        selected = ", ".join(
            f"toUnixTimestamp64Milli({c})" if c in _TIME_COLUMNS else c for c in _FACT_COLUMNS
        )
        rows = self._query(
            f"SELECT {selected}, version FROM {self.database}.calls "
            "WHERE callSid IN {sids:Array(String)}",
            {"sids": sids},
        )
        found = {}
        for row in rows:
            values = dict(zip(_FACT_COLUMNS, row[:-1], strict=True))
            for name in _TIME_COLUMNS:
                if values[name] is not None:
                    values[name] = from_ms(values[name])
            for name in _BOOL_COLUMNS:
                values[name] = bool(values[name])
            fact = CallFact(**values)
            found[fact.callSid] = StoredFact(fact, int(row[-1]))
        return found

    def insert_facts(self, facts: Sequence[StoredFact]) -> None:
        now = datetime.now(UTC)
        rows = []
        for stored in facts:
            row: list[Any] = []
            for name in _FACT_COLUMNS:
                value = getattr(stored.fact, name)
                row.append(int(value) if isinstance(value, bool) else value)
            rows.append([*row, stored.version, now])
        self._insert("call_facts", rows, (*_FACT_COLUMNS, "version", "updatedAt"))

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
        return clauses, params

    def list_calls(self, flt: CallFilter, limit: int, after: Cursor | None = None) -> CallPage:
        """Calls newest first (startedAt, then callSid, descending), `limit` at most."""
        clauses, params = self._where(flt)
        if after is not None:
            clauses.append(
                "(startedAt, callSid) < "
                "(fromUnixTimestamp64Milli({afterMs:Int64}, 'UTC'), {afterSid:String})"
            )
            params["afterMs"] = after.started_ms
            params["afterSid"] = after.call_sid
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT {_RECORD_SELECT} FROM {self.database}.calls {where} "
            f"ORDER BY startedAt DESC, callSid DESC LIMIT {int(limit) + 1}",
            params,
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
        page_size: int = 1000,
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
        clauses, params = self._where(flt)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        missed = ", ".join(f"'{status}'" for status in MISSED_STATUSES)
        rows = self._query(
            f"""
            SELECT
                count(),
                countIf(direction = 'inbound'),
                countIf(direction = 'outbound'),
                countIf(status = 'completed'),
                countIf(status IN ({missed})),
                sum(durationSec),
                countIf(answered = 1)
            FROM {self.database}.calls {where}
            """,
            params,
        )
        total, inbound, outbound, completed, missed_count, duration, answered = (
            int(v or 0) for v in rows[0]
        )
        return Summary.compute(
            total_calls=total,
            inbound=inbound,
            outbound=outbound,
            completed=completed,
            missed=missed_count,
            total_duration_sec=duration,
            answered=answered,
        )

    # -- counts the tests and operators look at ---------------------------------

    def count_events(self) -> int:
        return int(self._query(f"SELECT count() FROM {self.database}.events FINAL")[0][0])

    def count_calls(self) -> int:
        return int(self._query(f"SELECT count() FROM {self.database}.calls")[0][0])

    def count_fact_versions(self) -> int:
        """Rows in call_facts, superseded versions included (before merges)."""
        return int(self._query(f"SELECT count() FROM {self.database}.call_facts")[0][0])


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
