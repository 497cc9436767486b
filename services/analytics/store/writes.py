"""The consumer's writes: events, fact versions, the writes-started marks; and conversions.

The consumer keeps one fact per call in `call_facts` (its newest version
also in `call_state`, by CallSid, which the consumer's look-ups read) and
writes a changed fact as two rows: the previous version with sign -1 and
the new one with sign +1. Materialized views copy both into
`calls_by_client` and from there into the hourly sums of `client_hourly`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from services.analytics.facts import CallFact
from services.analytics.store.connection import Connection
from services.analytics.store.sql import (
    _ONE_THREAD,
    _ONE_THREAD_SQL,
    _stored_ms,
    _string_list,
    _string_lists,
    from_ms,
    to_ms,
)
from switchboard.events import Event

log = logging.getLogger(__name__)


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
    "voicemailSid",
    "voicemailDurationSec",
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


_DURATION_COLUMNS = (
    "durationSec",
    "dialDurationSec",
    "childDurationSec",
    "parentDurationSec",
    "voicemailDurationSec",
)


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
# parsing text, and Python builds it faster than JSON lines.
_FACT_ARROW = pa.schema(
    [
        *((name, _arrow_type(name)) for name in _FACT_COLUMNS),
        ("version", pa.uint64()),
        ("sign", pa.int8()),
        ("updatedAt", _UTC_MS),
    ]
)


@dataclass(frozen=True)
class StoredFact:
    fact: CallFact
    version: int


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


def _partition_key(group_id: str, topic: str, partition: int) -> str:
    return orjson.dumps([group_id, topic, partition]).decode()


class Writes(Connection):
    """What the consumer writes and reads back to fold, and the conversions the API records."""

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

        On its own connection it runs beside the caller's next statements,
        so the consumer's write of a batch does not wait for it.
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
        with self.turn.outside(), self._lock:
            self._client.raw_insert(
                f"{self.database}.call_facts",
                _FACT_ARROW.names,
                body.getvalue().to_pybytes(),
                settings=_ONE_THREAD,
                fmt="ArrowStream",
            )

    def record_write_started(
        self, group_id: str, end_offsets: Mapping[tuple[str, int], int]
    ) -> None:
        """Before a batch is written: the offsets (per topic and partition) it will commit.

        As JSON lines: clickhouse-connect's row insert would first ask for
        the table's column types, a round trip on every batch.
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

    @staticmethod
    def _fact_row(fact: CallFact) -> list[Any]:
        """A fact as one row of call_facts' fact columns (for inserts row by row)."""
        return [_fact_column(name, [fact])[0] for name in _FACT_COLUMNS]

    def record_conversion(self, client_id: str, call_sid: str, value: float) -> datetime:
        now = datetime.now(UTC)
        self._insert(
            "conversions",
            [[client_id, call_sid, float(value), now, to_ms(now)]],
            ("clientId", "callSid", "value", "recordedAt", "version"),
        )
        return now
