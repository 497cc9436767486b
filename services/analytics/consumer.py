"""The analytics consumer: events from Kafka into ClickHouse, at least once.

It reads three topics: call events (folded into one fact per call), number
events (who held a number when: calls without a routing decision or
campaign are attributed from them, also calls stored before the number
event arrived) and client events (each client's time zone and reporting
settings). One short pipeline, each step a method of the same name:

    poll -> decode (and validate) -> batch -> write -> commit

A batch closes on size or age, whichever comes first. `write` makes it
durable in ClickHouse; only then does `commit` store the batch's offsets, so
a crash re-delivers at most the batches in flight. Re-delivery is harmless:
the write skips event ids already stored and the fold is idempotent. A write
commits table by table (the events' insert runs beside the facts'), so
before it starts the consumer records the
offsets it will commit (`writes_started`); a batch that is retried, or that
holds messages below the offsets of a write started and never committed
(the process was killed inside it), first has its calls repaired
(`Store.repair`), which mends whatever the broken write left. A
message that does not decode goes to the dead-letter topic with the reason
and its offset is committed with the batch; past a ratio of invalid messages
the consumer stops loudly.

The write runs in a writer thread, one batch at a time, while the loop
polls and decodes the next batch: chDB does its part in C++ without holding
the GIL, so the two overlap. The loop alone talks to Kafka: it hands a
closed batch to the writer, and commits it when it sees that write done,
always before the next batch is handed over, so commits stay in order and
never run ahead of a write. While the writer is busy and the next batch is
full, or while ClickHouse refuses a write, the partitions are paused and
the loop keeps polling (so the group sees it alive); a failed write is
retried with the same batch until it succeeds.

The machinery is switchboard.consumer's (reading polls, dead-lettering with
the invalid-ratio guard, offsets, pausing, backoff, start/stop and health);
what is analytics' own is the decode step and the write step (`write`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import attrgetter

from confluent_kafka import Consumer, Message, TopicPartition

from services.analytics.clients import SETTINGS_TYPE, settings_from_event
from services.analytics.config import Config
from services.analytics.facts import CallFact, fold_all
from services.analytics.numbers import (
    NumberAssignment,
    assignment_at,
    assignment_from_event,
    attribute,
    needs_attribution,
    tracked_number,
)
from services.analytics.privacy import ERASED_TYPE, ErasedCallers, expire_client_calls
from services.analytics.store import Repair, Store, StoredFact
from switchboard import kafka
from switchboard.consumer import (
    Backoff,
    ConsumerThread,
    Decoder,
    InvalidRatioGuard,
    Offsets,
    Pauser,
    Progress,
    TooManyInvalidMessages,
    messages,
    position,
)
from switchboard.events import Event, decode

__all__ = [
    "EXPIRE_EVERY_SECONDS",
    "AnalyticsConsumer",
    "ConsumerStats",
    "TooManyInvalidMessages",
    "WriteResult",
    "collect_young_objects_less_often",
    "write",
]

log = logging.getLogger(__name__)

CONSUMER_NAME = "analytics"
_POLL_SECONDS = 0.2
# How long one poll waits while a write is running: the loop looks for the
# write's end between polls, and a paused consumer gets no messages anyway.
_WRITING_POLL_SECONDS = 0.005
# With the next batch full, how long the loop waits for the running write
# before it pauses the partitions and polls on (a rebalance waits that long).
_WAIT_FOR_WRITE_SECONDS = 1.0
_RETRY_FIRST_SECONDS = 0.5
_RETRY_MAX_SECONDS = 10.0
# How often a consumer with a retention set deletes expired calls from call_state.
EXPIRE_EVERY_SECONDS = 3600.0


# Container objects (dicts, Events, facts) that a batch may keep alive per
# message: the open batch's and the writer's, each event with its fields and
# data, plus the facts folded from them.
_GC_OBJECTS_PER_MESSAGE = 10


def collect_young_objects_less_often(batch_size: int) -> None:
    """Let the youngest GC generation hold what two batches keep alive, at least.

    A batch keeps thousands of decoded (acyclic) events alive until its write
    is done; with the default threshold young collections kept traversing
    and promoting them, a sizeable share of the consumer's CPU
    (docs/performance.md, "GC tuning"). Process-wide, and never lowered:
    other code in the process keeps its collections, just less often.
    """
    young, *older = gc.get_threshold()
    wanted = _GC_OBJECTS_PER_MESSAGE * batch_size
    if young and young < wanted:  # 0: collection disabled, leave it so
        gc.set_threshold(wanted, *older)


@dataclass
class ConsumerStats:
    messages: int = 0
    invalid: int = 0
    batches: int = 0
    events_written: int = 0
    duplicates_skipped: int = 0
    facts_written: int = 0
    commits: int = 0
    write_failures: int = 0
    calls_mended: int = 0
    hourly_cells_corrected: int = 0


@dataclass(frozen=True)
class WriteResult:
    events_written: int
    duplicates_skipped: int
    facts_written: int
    repair: Repair = Repair((), 0)


@dataclass
class Batch:
    """Decoded events plus the next offset to commit for every partition read."""

    max_size: int
    max_age: float
    events: list[Event] = field(default_factory=list)
    payloads: dict[str, bytes] = field(default_factory=dict)  # event id -> message value
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    messages: int = 0
    opened_at: float | None = None
    attempts: int = 0  # writes of this batch started so far

    def add(self, msg: Message, event: Event | None) -> None:
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        if event is not None:
            self.events.append(event)
            value = msg.value()
            if value is not None:
                self.payloads[event.id] = value
        self.messages += 1
        topic, partition, offset = position(msg)
        key = (topic, partition)
        self.first_offsets.setdefault(key, offset)
        self.offsets[key] = offset + 1

    @property
    def empty(self) -> bool:
        return self.messages == 0

    @property
    def full(self) -> bool:
        return self.messages >= self.max_size

    @property
    def room(self) -> int:
        return max(1, self.max_size - self.messages)

    def seconds_left(self, now: float) -> float:
        if self.opened_at is None:
            return self.max_age
        return self.opened_at + self.max_age - now

    def closed(self, now: float) -> bool:
        return self.full or (self.opened_at is not None and self.seconds_left(now) <= 0)


def write(
    store: Store,
    events: Sequence[Event],
    payloads: Mapping[str, bytes] | None = None,
    repair: bool = False,
    erased: ErasedCallers | None = None,
) -> WriteResult:
    """Make a batch durable: the raw events beside numbers, settings and new fact versions.

    The events' insert runs on a connection of its own while the facts are
    folded and written (`Store.begin_insert_events`); the write returns once
    both are done. "Already stored" is judged by the events table, so a
    write that stopped half way may have stored events whose facts it never
    wrote: on a repair (`repair`: an earlier write of these events may have
    stopped half way) every event of the batch is folded again, not only
    those missing from the events table, after `Store.repair` has mended
    the calls. Folding an event the fact already holds changes nothing (the
    fold's rules are order-free), so only what the broken write missed is
    written. Number assignments and client settings are upserts (newest
    occurredAt wins), harmless to repeat; calls of the same batch are
    attributed with the batch's assignments as loaded (`write_facts`).
    `payloads` are the events as they arrived (by id), stored as they are,
    except that the numbers of erased callers (`erased`) are replaced by
    their tokens first: a caller erased in this batch is erased before the
    batch's events are stored, and a replayed event never brings an erased
    number back.
    """
    if erased is not None:
        for event in events:
            if event.type == ERASED_TYPE:
                erased.apply(store, event)
        events, payloads = erased.scrub(events, payloads)
    mended = store.repair(events) if repair else Repair((), 0)
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    stored = store.stored_event_ids(list(unique.values()))
    fresh = [event for event in unique.values() if event.id not in stored]
    folded = list(unique.values()) if repair else fresh
    if not folded:
        return WriteResult(0, len(events), 0, mended)
    storing = store.begin_insert_events(fresh, payloads)
    try:
        facts_written = write_facts(store, folded)
    except BaseException:
        with store.turn.outside():
            wait((storing,))  # ended either way before the batch is tried again
        raise
    with store.turn.outside():
        storing.result()
    return WriteResult(len(fresh), len(events) - len(fresh), facts_written, mended)


@dataclass(frozen=True)
class Loaded:
    """What folding a batch needs from the store, read before anything is written."""

    assignments: list[NumberAssignment]  # the batch's, releases resolved to their periods
    current: dict[str, StoredFact]  # stored facts of the batch's calls and of late ones
    late: frozenset[str]  # calls stored before the batch's number events, to attribute


def write_facts(store: Store, events: Sequence[Event]) -> int:
    """Load, fold (pure), attribute (pure, with the numbers' assignments), write what changed."""
    loaded = load(store, events)
    facts = fold_calls(loaded, events)
    known = known_assignments(store, facts, loaded.assignments)
    changed = changed_facts(loaded.current, attribute_all(facts, known))
    store.upsert_assignments(loaded.assignments)
    store.upsert_client_settings([s for s in map(settings_from_event, events) if s is not None])
    store.insert_facts(changed, loaded.current)
    return len(changed)


def load(store: Store, events: Sequence[Event]) -> Loaded:
    """The batch's number assignments, and the stored facts of its calls and of late calls.

    Late calls were stored before this batch's number events arrived (a
    replay reads the topics in no particular order) and get the same
    attribution.
    """
    assignments = resolve_assignments(
        store, [a for a in map(assignment_from_event, events) if a is not None]
    )
    call_sids = {event.callSid for event in events if event.callSid}
    current = store.load_facts(call_sids)
    late = {sid for a in assignments for sid in store.calls_to_attribute(a)} - call_sids
    if late:
        current.update(store.load_facts(late))
    return Loaded(assignments, current, frozenset(late & set(current)))


def fold_calls(loaded: Loaded, events: Sequence[Event]) -> dict[str, CallFact | None]:
    """Each call's fact with this batch's events folded in (late calls as stored)."""
    by_call: dict[str, list[Event]] = {}
    for event in events:
        if event.callSid:
            by_call.setdefault(event.callSid, []).append(event)
    facts: dict[str, CallFact | None] = {}
    for sid, its_events in by_call.items():
        before = loaded.current.get(sid)
        facts[sid] = fold_all(before.fact if before else None, its_events)
    for sid in loaded.late:
        facts[sid] = loaded.current[sid].fact
    return facts


def changed_facts(
    current: Mapping[str, StoredFact], facts: Mapping[str, CallFact | None]
) -> list[StoredFact]:
    """The new version of each fact that differs from the stored one."""
    changed = []
    for sid, fact in facts.items():
        before = current.get(sid)
        if fact is None or (before is not None and before.fact == fact):
            continue
        changed.append(StoredFact(fact, (before.version if before else 0) + 1))
    return changed


def resolve_assignments(
    store: Store, assignments: list[NumberAssignment]
) -> list[NumberAssignment]:
    """Releases without assignedAt close the number's open period; the rest pass as they are."""
    unknown = [a for a in assignments if a.assignedAt.timestamp() == 0]
    if not unknown:
        return assignments
    known = store.load_assignments({a.phoneNumber for a in unknown})
    resolved = []
    for assignment in assignments:
        if assignment not in unknown:
            resolved.append(assignment)
            continue
        released = assignment.releasedAt or assignment.assignedAt
        open_periods = [
            a
            for a in known
            if a.phoneNumber == assignment.phoneNumber
            and a.releasedAt is None
            and a.assignedAt <= released
        ]
        if not open_periods:
            log.warning("release of %s matches no open assignment", assignment.phoneNumber)
            continue
        period = max(open_periods, key=lambda a: a.assignedAt)
        resolved.append(
            replace(
                assignment,
                assignedAt=period.assignedAt,
                campaign=assignment.campaign or period.campaign,
                clientId=assignment.clientId or period.clientId,
            )
        )
    return resolved


def wanting_attribution(facts: Mapping[str, CallFact | None]) -> dict[str, CallFact]:
    return {
        sid: fact
        for sid, fact in facts.items()
        if fact is not None and needs_attribution(fact) and tracked_number(fact)
    }


def known_assignments(
    store: Store, facts: Mapping[str, CallFact | None], fresh: Sequence[NumberAssignment]
) -> list[NumberAssignment]:
    """The assignments of the numbers whose calls miss a client or campaign, the batch's newest."""
    wanting = wanting_attribution(facts)
    if not wanting:
        return []
    numbers = {tracked_number(fact) for fact in wanting.values()}
    known = {(a.phoneNumber, a.assignedAt): a for a in store.load_assignments(numbers)}
    for assignment in fresh:  # not written yet: the batch's writes come last
        key = (assignment.phoneNumber, assignment.assignedAt)
        if key not in known or known[key].version <= assignment.version:
            known[key] = assignment
    return list(known.values())


def attribute_all(
    facts: dict[str, CallFact | None], known: Sequence[NumberAssignment]
) -> dict[str, CallFact | None]:
    """Missing clients and campaigns filled from the numbers' assignments (pure)."""
    wanting = wanting_attribution(facts)
    if not wanting:
        return facts
    attributed = dict(facts)
    for sid, fact in wanting.items():
        period = assignment_at(known, tracked_number(fact), fact.startedAt)
        attributed[sid] = attribute(fact, period)
    return attributed


class AnalyticsConsumer(ConsumerThread):
    """Runs the pipeline in a background thread; `stop()` ends it cleanly.

    Built from switchboard.consumer's parts; its own are the decode step
    (`_decode`: an event whose number times can be read) and the write step
    (`write`), run in a writer thread that takes the store's writer-first
    turn at the GIL (`Store.turn`).
    """

    thread_name = "analytics-consumer"

    def __init__(
        self,
        config: Config,
        store: Store,
        group_id: str | None = None,
        decoder: Callable[[bytes | None], Event] = decode,
    ) -> None:
        """`decoder` turns a message's value into its Event or raises InvalidEvent."""
        super().__init__()
        self.config = config
        self.store = store
        self.group_id = group_id or config.group_id
        self._decoder = decoder
        self.stats = ConsumerStats()
        self._decode_step = Decoder(
            self._validated,
            lambda: self._producer,
            config.topics,
            CONSUMER_NAME,
            InvalidRatioGuard(config.invalid_window, config.max_invalid_ratio),
        )
        self._offsets = Offsets()
        # Events consumed per type and lag per partition, for /metrics.
        self.progress = Progress(CONSUMER_NAME)
        self._pauser = Pauser()
        self._backoff = Backoff(_RETRY_FIRST_SECONDS, _RETRY_MAX_SECONDS)
        self._batch = self._new_batch()  # the open batch, being filled
        self._writing: Batch | None = None  # handed to the writer, not yet committed
        self._write_done: Future[WriteResult] | None = None  # None while a retry waits
        self._writer: ThreadPoolExecutor | None = None
        self._drain = True
        self._producer: kafka.EventProducer | None = None
        self._retry_at: float | None = None
        # Per partition, the end offset of the last write started on it (by
        # any consumer of the group), as far as this one has read or made it.
        self._writes_started: dict[tuple[str, int], int] = {}
        # Loaded by the first write, which retries while ClickHouse cannot answer.
        self._erased: ErasedCallers | None = None
        # apply_retention expired call_state at start-up; next time in an hour.
        self._expire_at = time.monotonic() + EXPIRE_EVERY_SECONDS

    # -- lifecycle ------------------------------------------------------------

    def stop(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop polling; with `drain` the batches read so far are written and committed first.

        `drain=False` leaves the open batch unwritten and uncommitted, as a
        crash would (a write already running finishes, uncommitted): those
        messages are read again by the next consumer.
        """
        self._drain = drain
        self._request_stop(timeout)

    def run(self) -> None:
        """The loop itself, in the calling thread, until stop() or a fatal error."""
        try:
            consumer = Consumer(
                kafka.consumer_config(
                    self.config.kafka_bootstrap, self.group_id, **{"client.id": CONSUMER_NAME}
                )
            )
            self._producer = kafka.EventProducer(self.config.kafka_bootstrap)
        except BaseException as err:
            self.error = err
            log.critical("analytics consumer could not start: %s", err, exc_info=True)
            raise
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics-writer")
        collect_young_objects_less_often(self.config.batch_size)
        consumer.subscribe(
            [
                self.config.topics.call_events,
                self.config.topics.number_events,
                self.config.topics.client_events,
            ],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info("consumer started", extra={"topic": self.config.topics.call_events})
        try:
            while not self._stopping.is_set():
                self._step(consumer)
            if self._drain and not self._finish(consumer):
                log.warning("last batches not written on stop; they will be read again")
        except BaseException as err:
            self.error = err
            log.critical("analytics consumer stopped: %s", err, exc_info=True)
            raise
        finally:
            consumer.close()
            self._writer.shutdown(wait=True)
            self._producer.close(5)  # its delivery-report thread too
            self._producer = None
            log.info("consumer stopped")

    # -- the pipeline ------------------------------------------------------------

    def _step(self, consumer: Consumer) -> None:
        if self._write_done is not None and self._batch.full and not self._pauser.paused:
            # The next batch is ready before the write is done: wait for it
            # (as long as a write in this thread would have taken) rather
            # than pause at once, since a pause drops what librdkafka fetched
            # ahead and it must be fetched again after resume.
            wait((self._write_done,), timeout=_WAIT_FOR_WRITE_SECONDS)
        now = time.monotonic()
        written = None
        if self._write_done is not None and self._write_done.done():
            written = self._written()  # None if it failed: retried later
        if self._retry_due(now):
            assert self._writing is not None
            self._write_done = self._submit(self._writing)
        if self._writing is None and self._batch.closed(now):
            self._hand_over()  # before the commit, so the writer goes on at once
        if written is not None:
            self._commit(consumer, written)
        self._back_pressure(consumer)
        self.expire_call_state(now)
        self.progress.refresh(consumer, self._offsets.committed, self._pauser.paused)
        self._poll(consumer, self._poll_timeout(now))

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

    def _retry_due(self, now: float) -> bool:
        waiting = self._writing is not None and self._write_done is None
        return waiting and (self._retry_at is None or now >= self._retry_at)

    def _poll_timeout(self, now: float) -> float:
        if self._write_done is not None:
            return _WRITING_POLL_SECONDS
        if self._writing is not None:  # a retry waits
            return min(_POLL_SECONDS, max(0.0, (self._retry_at or now) - now))
        return min(_POLL_SECONDS, max(0.0, self._batch.seconds_left(now)))

    def _poll(self, consumer: Consumer, timeout: float) -> None:
        for msg in messages(consumer.consume(num_messages=self._batch.room, timeout=timeout)):
            self.stats.messages += 1
            self._batch.add(msg, self._decode(msg))

    def _decode(self, msg: Message) -> Event | None:
        """The message's event, or None after sending it to the dead-letter topic."""
        self.store.turn.wait_for_writer()
        event = self._decode_step(msg)
        if event is None:
            self.stats.invalid += 1
        return event

    def _validated(self, value: bytes | None) -> Event:
        event = self._decoder(value)
        # A number event's own times are read here too: one that cannot be
        # read would fail every retry of the batch's write.
        assignment_from_event(event)
        return event

    def _hand_over(self) -> None:
        """The closed batch goes to the writer; a new batch opens."""
        self._writing = self._batch
        self._write_done = self._submit(self._writing)
        self._batch = self._new_batch()

    def _submit(self, batch: Batch) -> Future[WriteResult]:
        assert self._writer is not None
        return self._writer.submit(self._write, batch)

    def _write(self, batch: Batch) -> WriteResult:
        """In the writer thread: make the batch durable, first mending a write left unfinished."""
        with self.store.turn.writing():
            repair = batch.attempts > 0 or self._follows_unfinished_write(batch)
            batch.attempts += 1
            if self._erased is None:
                self._erased = ErasedCallers.load(self.store, self.config.privacy_token_secret)
            self.store.record_write_started(self.group_id, batch.offsets)
            self._writes_started.update(batch.offsets)
            result = write(
                self.store, batch.events, batch.payloads, repair=repair, erased=self._erased
            )
        if any(event.type == SETTINGS_TYPE for event in batch.events):
            self._expire_at = 0.0  # a retention or a purge may be due now: next loop turn
        return result

    def _follows_unfinished_write(self, batch: Batch) -> bool:
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

    def _written(self) -> Batch | None:
        """The write handed over has ended: its batch, to commit; None to retry it later."""
        assert self._writing is not None and self._write_done is not None
        batch, done = self._writing, self._write_done
        self._write_done = None
        try:
            result = done.result()
        except Exception as err:  # any store failure means: pause, retry later
            self.stats.write_failures += 1
            delay = self._backoff.failed()
            log.error("write failed, partitions paused, retry in %.1fs: %s", delay, err)
            self._retry_at = time.monotonic() + delay
            return None
        self.stats.batches += 1
        self.stats.events_written += result.events_written
        self.stats.duplicates_skipped += result.duplicates_skipped
        self.stats.facts_written += result.facts_written
        self.stats.calls_mended += len(result.repair.calls)
        self.stats.hourly_cells_corrected += result.repair.hourly_cells
        # One count per type for the whole batch: counting stays off the per-message path.
        self.progress.consumed(Counter(map(attrgetter("type"), batch.events)))
        self._writing = None
        self._retry_at = None
        self._backoff.succeeded()
        return batch

    def _commit(self, consumer: Consumer, batch: Batch) -> None:
        """Commit this batch's offsets, now that its write is durable.

        A commit that fails is logged and its offsets go with the next
        batch's: the write stands, and an uncommitted batch is only read again.
        """
        self._offsets.advance(batch.offsets)
        if self._offsets.commit(consumer):
            self.stats.commits += 1

    def _back_pressure(self, consumer: Consumer) -> None:
        """Paused while ClickHouse refuses writes, or while a slow write holds up a full batch."""
        hold = self._writing is not None and (self._retry_at is not None or self._batch.full)
        self._pauser.hold(consumer, hold)

    def _finish(self, consumer: Consumer) -> bool:
        """On stop: wait for the write running, then write the open batch; both committed."""
        if self._writing is not None:
            if self._write_done is None:
                self._write_done = self._submit(self._writing)  # one last retry
            if not self._wait_and_commit(consumer):
                return False  # the open batch must not be committed past it
        if not self._batch.empty:
            self._hand_over()
            return self._wait_and_commit(consumer)
        return True

    def _wait_and_commit(self, consumer: Consumer) -> bool:
        assert self._write_done is not None
        wait((self._write_done,))
        written = self._written()
        if written is None:
            return False
        self._commit(consumer, written)
        return True

    # -- rebalances ----------------------------------------------------------------

    def _new_batch(self) -> Batch:
        return Batch(self.config.batch_size, self.config.batch_seconds)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", [p.partition for p in partitions])
        for tp in partitions:  # another consumer may have written there since
            self._writes_started.pop((tp.topic, tp.partition), None)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand over cleanly: finish the batches read while we still own their
        # partitions. If that fails, drop them; the next owner re-reads them.
        # Not after a fatal error or a crash-like stop(drain=False) (close()
        # also revokes): then they are left to be read again.
        abandon = self.error is not None or (self._stopping.is_set() and not self._drain)
        if abandon or (self._writing is not None and self._write_done is None):
            self._forget_writes()
        else:
            try:
                if not self._finish(consumer):
                    log.warning("batches dropped on revoke, they will be re-read")
            except Exception as err:
                log.warning("batches dropped on revoke, they will be re-read: %s", err)
        self._reset()

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost: %s", [p.partition for p in partitions])
        self._forget_writes()
        self._reset()

    def _forget_writes(self) -> None:
        """Let a write that is running end, uncommitted: its batch will be read again."""
        if self._write_done is not None:
            wait((self._write_done,))

    def _reset(self) -> None:
        self.progress.forget()
        self._batch = self._new_batch()
        self._writing = None
        self._write_done = None
        self._pauser.forget()
        self._offsets.forget()
        self._retry_at = None
        self._backoff.succeeded()
