"""The analytics consumer: events from Kafka into ClickHouse, at least once.

It reads three topics: call events (folded into one fact per call), number
events (who held a number when: calls without a routing decision or
campaign are attributed from them, also calls stored before the number
event arrived) and client events (each client's time zone and reporting
settings). It is a switchboard.consumer.StreamProcessor:

    poll -> decode (and validate) -> batch -> write -> commit

with analytics' own two steps. `decode` is the events' schema plus what
`READ_AT_DECODE` reads of each type, so an event the write could never
handle is dead-lettered instead of failing its batch on every retry.
`write` is ingest.write (load -> fold and attribute -> write), after two
things a crash may call for. A write commits table by table (the events'
insert runs beside the facts'), so before it starts the consumer records
the offsets it will commit (`writes_started`); a batch that is retried, or
that holds messages below the offsets of a write started and never
committed (the process was killed inside it), first has its calls repaired
(`Store.repair`), which mends whatever the broken write left.

The write runs in the processor's writer thread while the loop polls and
decodes the next batch: chDB does its part in C++ without holding the GIL,
so the two overlap, and the writer takes the store's writer-first turn at
the GIL (`Store.turn`). Once an hour the loop also deletes calls past their
retention from call_state (`expire_call_state`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter

from confluent_kafka import Message, TopicPartition

from services.analytics.clients import SETTINGS_TYPE
from services.analytics.config import Config
from services.analytics.ingest import WriteResult, write
from services.analytics.numbers import assignment_from_event
from services.analytics.privacy import ErasedCallers, expire_client_calls
from services.analytics.store import Store
from switchboard.consumer import (
    Batch,
    ProcessorStats,
    Settings,
    StreamProcessor,
    TooManyInvalidMessages,
)
from switchboard.events import Event, decode

__all__ = [
    "EXPIRE_EVERY_SECONDS",
    "READ_AT_DECODE",
    "AnalyticsConsumer",
    "ConsumerStats",
    "TooManyInvalidMessages",
    "WriteResult",
    "collect_young_objects_less_often",
    "write",
]

log = logging.getLogger(__name__)

CONSUMER_NAME = "analytics"
# How often a consumer with a retention set deletes expired calls from call_state.
EXPIRE_EVERY_SECONDS = 3600.0

# The decode step by event type: what is read of an event beyond its schema.
# A value the write could not read (a number event's times) sends the event
# to the dead-letter topic here, instead of failing its batch's write on
# every retry. A type not listed needs its schema only. A new type to consume
# takes a row here for the fields its write reads, and its part in ingest.py.
READ_AT_DECODE: dict[str, Callable[[Event], object]] = {
    "number.assigned": assignment_from_event,
    "number.released": assignment_from_event,
}

# Container objects (dicts, Events, facts) that a batch may keep alive per
# message: the open batch's and the writer's, each event with its fields and
# data, plus the facts folded from them.
_GC_OBJECTS_PER_MESSAGE = 10


def collect_young_objects_less_often(batch_size: int) -> None:
    """Let the youngest GC generation hold what two batches keep alive, at least.

    A batch keeps thousands of decoded (acyclic) events alive until its
    write is done; with the default threshold, young collections keep
    traversing and promoting them (docs/performance.md, "GC tuning").
    Process-wide, and never lowered: other code in the process keeps its
    collections, just less often.
    """
    young, *older = gc.get_threshold()
    wanted = _GC_OBJECTS_PER_MESSAGE * batch_size
    if young and young < wanted:  # 0: collection disabled, leave it so
        gc.set_threshold(wanted, *older)


@dataclass
class ConsumerStats(ProcessorStats):
    """The processor's counts and what analytics' writes did."""

    events_written: int = 0
    duplicates_skipped: int = 0
    facts_written: int = 0
    calls_mended: int = 0
    hourly_cells_corrected: int = 0


class AnalyticsConsumer(StreamProcessor[Event]):
    """The stream processor with analytics' decode and write steps; `start()`, `stop()`."""

    thread_name = "analytics-consumer"

    def __init__(
        self,
        config: Config,
        store: Store,
        group_id: str | None = None,
        decoder: Callable[[bytes | None], Event] = decode,
    ) -> None:
        """`decoder` turns a message's value into its Event or raises InvalidEvent."""
        self.config = config
        self.store = store
        self.group_id = group_id or config.group_id
        self._decoder_of_values = decoder
        # Per partition, the end offset of the last write started on it (by
        # any consumer of the group), as far as this one has read or made it.
        self._writes_started: dict[tuple[str, int], int] = {}
        # Loaded by the first write, which retries while ClickHouse cannot answer.
        self._erased: ErasedCallers | None = None
        # apply_retention expired call_state at start-up; next time in an hour.
        self._expire_at = time.monotonic() + EXPIRE_EVERY_SECONDS
        topics = config.topics
        super().__init__(
            CONSUMER_NAME,
            Settings(
                bootstrap=config.kafka_bootstrap,
                group_id=self.group_id,
                subscribe=(topics.call_events, topics.number_events, topics.client_events),
                topics=topics,
                batch_size=config.batch_size,
                batch_seconds=config.batch_seconds,
                invalid_window=config.invalid_window,
                max_invalid_ratio=config.max_invalid_ratio,
            ),
            decode=self.decode,
            write=self.write,
            kind=attrgetter("type"),
            turn=store.turn,
            housekeeping=self.expire_call_state,
            on_assign=self._forget_writes_started,
            stats=ConsumerStats(),
        )
        self.stats: ConsumerStats

    def run(self) -> None:
        collect_young_objects_less_often(self.config.batch_size)
        super().run()

    # -- analytics' steps -------------------------------------------------------------

    def decode(self, msg: Message) -> Event:
        """The message's event, its schema checked and its type's fields read (READ_AT_DECODE)."""
        event = self._decoder_of_values(msg.value())
        read = READ_AT_DECODE.get(event.type)
        if read is not None:
            read(event)
        return event

    def write(self, batch: Batch[Event]) -> WriteResult:
        """In the writer thread: make the batch durable, first mending a write left unfinished."""
        repair = batch.attempts > 1 or self._follows_unfinished_write(batch)
        if self._erased is None:
            self._erased = ErasedCallers.load(self.store, self.config.privacy_token_secret)
        self.store.record_write_started(self.group_id, batch.offsets)
        self._writes_started.update(batch.offsets)
        events = batch.items
        # The events as they arrived, stored as they are.
        payloads = {
            event.id: value
            for event, value in zip(events, batch.values, strict=True)
            if value is not None
        }
        result = write(self.store, events, payloads, repair=repair, erased=self._erased)
        stats = self.stats
        stats.events_written += result.events_written
        stats.duplicates_skipped += result.duplicates_skipped
        stats.facts_written += result.facts_written
        stats.calls_mended += len(result.repair.calls)
        stats.hourly_cells_corrected += result.repair.hourly_cells
        if any(event.type == SETTINGS_TYPE for event in events):
            self._expire_at = 0.0  # a retention or a purge may be due now: next loop turn
        return result

    def expire_call_state(self, now: float) -> None:
        """Once an hour (and after clients' settings changed): expired calls deleted.

        With a global retention set, call_state's expired calls (the other
        tables expire by TTL); then each client's calls past its own
        retention, and every call of a deleted client whose purge is due.
        A failure is logged and tried again an hour later: expiry can wait,
        the pipeline must not stop for it.
        """
        if now < self._expire_at:
            return
        self._expire_at = now + EXPIRE_EVERY_SECONDS
        days = self.config.retention_days
        try:
            if days > 0:
                self.store.expire_call_state(days)
            expire_client_calls(self.store, datetime.now(UTC), self._erased)
        except Exception as err:
            log.warning("expired calls not deleted from call_state, next try in an hour: %s", err)

    # -- mending a write a crash left unfinished ------------------------------------

    def _follows_unfinished_write(self, batch: Batch[Event]) -> bool:
        """Whether the batch re-reads messages of a write that started and was never committed.

        Such a write was killed (or abandoned) somewhere inside: its batch
        started at the committed offset, where this one starts, and its end
        offset is recorded above it.
        """
        unknown = [key for key in batch.first_offsets if key not in self._writes_started]
        if unknown:
            known = self.store.writes_started(self.group_id, unknown)
            self._writes_started.update({key: known.get(key, 0) for key in unknown})
        return any(first < self._writes_started[key] for key, first in batch.first_offsets.items())

    def _forget_writes_started(self, partitions: list[TopicPartition]) -> None:
        """Another consumer of the group may have written on these partitions since."""
        for tp in partitions:
            self._writes_started.pop((tp.topic, tp.partition), None)
