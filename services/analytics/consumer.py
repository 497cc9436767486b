"""The analytics consumer: events from Kafka into ClickHouse, at least once.

It reads three topics: call events (folded into one fact per call), number
events (who held a number when: calls without a routing decision or
campaign are attributed from them, also calls stored before the number
event arrived) and client events (each client's time zone and reporting
settings). One short pipeline, each step a method of the same name:

    poll -> decode (and validate) -> batch -> write -> commit

A batch closes on size or age, whichever comes first. `write` makes it
durable in ClickHouse; only then does `commit` store the batch's offsets, so
a crash re-delivers at most the batch in flight. Re-delivery is harmless: the
write skips event ids already stored and the fold is idempotent. A message
that does not decode goes to the dead-letter topic with the reason and its
offset is committed with the batch; past a ratio of invalid messages the
consumer stops loudly. While ClickHouse refuses a write the partitions are
paused and the loop keeps polling (so the group sees it alive) until a retry
succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from services.analytics.clients import settings_from_event
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
from services.analytics.store import Store, StoredFact
from switchboard import kafka
from switchboard.events import Event, InvalidEvent, decode

log = logging.getLogger(__name__)

CONSUMER_NAME = "analytics"
_POLL_SECONDS = 0.2
_RETRY_FIRST_SECONDS = 0.5
_RETRY_MAX_SECONDS = 10.0


class TooManyInvalidMessages(RuntimeError):
    """More of the recent messages were invalid than the configured ratio allows."""


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


@dataclass(frozen=True)
class WriteResult:
    events_written: int
    duplicates_skipped: int
    facts_written: int


@dataclass
class Batch:
    """Decoded events plus the next offset to commit for every partition read."""

    max_size: int
    max_age: float
    events: list[Event] = field(default_factory=list)
    payloads: dict[str, bytes] = field(default_factory=dict)  # event id -> message value
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    messages: int = 0
    opened_at: float | None = None

    def add(self, msg: Message, event: Event | None) -> None:
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        if event is not None:
            self.events.append(event)
            value = msg.value()
            if value is not None:
                self.payloads[event.id] = value
        self.messages += 1
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or offset is None:
            raise ValueError("a consumed message without topic, partition or offset")
        self.offsets[(topic, partition)] = offset + 1

    @property
    def empty(self) -> bool:
        return self.messages == 0

    @property
    def room(self) -> int:
        return max(1, self.max_size - self.messages)

    def seconds_left(self, now: float) -> float:
        if self.opened_at is None:
            return self.max_age
        return self.opened_at + self.max_age - now

    def closed(self, now: float) -> bool:
        return self.messages >= self.max_size or (
            self.opened_at is not None and self.seconds_left(now) <= 0
        )

    def commit_offsets(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, offset) for (t, p), offset in sorted(self.offsets.items())]


class InvalidRatioGuard:
    """Stops the consumer when too many of the last `window` messages were invalid."""

    def __init__(self, window: int, max_ratio: float) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._max_ratio = max_ratio

    def record(self, invalid: bool) -> None:
        self._recent.append(invalid)
        if len(self._recent) < (self._recent.maxlen or 0):
            return
        ratio = sum(self._recent) / len(self._recent)
        if ratio > self._max_ratio:
            raise TooManyInvalidMessages(
                f"{sum(self._recent)} of the last {len(self._recent)} messages were invalid "
                f"(limit {self._max_ratio:.0%}); stopping instead of dead-lettering the topic"
            )


def write(
    store: Store, events: Sequence[Event], payloads: Mapping[str, bytes] | None = None
) -> WriteResult:
    """Make a batch durable: numbers and settings, new fact versions, then the raw events.

    Facts go before the events on purpose. "Already stored" is judged by
    the events table, so if the process dies between the two inserts the
    events are folded again on re-delivery, which the idempotent fold makes
    harmless; the other order would leave those events out of the fact for
    good. Number assignments and client settings are upserts (newest
    occurredAt wins), harmless to repeat, and go first so that calls of the
    same batch are attributed with them. `payloads` are the events as they
    arrived (by id), stored as they are.
    """
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    stored = store.stored_event_ids(list(unique.values()))
    fresh = [event for event in unique.values() if event.id not in stored]
    if not fresh:
        return WriteResult(0, len(events), 0)

    assignments = resolve_assignments(
        store, [a for a in map(assignment_from_event, fresh) if a is not None]
    )
    store.upsert_assignments(assignments)
    store.upsert_client_settings([s for s in map(settings_from_event, fresh) if s is not None])

    call_sids = {event.callSid for event in fresh if event.callSid}
    current = store.load_facts(call_sids)
    facts: dict[str, CallFact | None] = {
        sid: (current[sid].fact if sid in current else None) for sid in call_sids
    }
    by_call: dict[str, list[Event]] = {}
    for event in fresh:
        if event.callSid:
            by_call.setdefault(event.callSid, []).append(event)
    for sid, its_events in by_call.items():
        facts[sid] = fold_all(facts[sid], its_events)

    # Calls stored before this batch's number events arrived (a replay reads
    # the topics in no particular order) get the same attribution.
    late = {sid for a in assignments for sid in store.calls_to_attribute(a)} - set(facts)
    if late:
        for sid, stored_fact in store.load_facts(late).items():
            current[sid] = stored_fact
            facts[sid] = stored_fact.fact
    attribute_all(store, facts, assignments)

    changed = []
    for sid, fact in facts.items():
        before = current.get(sid)
        if fact is None or (before is not None and before.fact == fact):
            continue
        changed.append(StoredFact(fact, (before.version if before else 0) + 1))
    store.insert_facts(changed, current)
    store.insert_events(fresh, payloads)
    return WriteResult(len(fresh), len(events) - len(fresh), len(changed))


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


def attribute_all(
    store: Store, facts: dict[str, CallFact | None], fresh: Sequence[NumberAssignment]
) -> None:
    """Fill missing clients and campaigns from the numbers' assignments, in place."""
    wanting = {
        sid: fact
        for sid, fact in facts.items()
        if fact is not None and needs_attribution(fact) and tracked_number(fact)
    }
    if not wanting:
        return
    numbers = {tracked_number(fact) for fact in wanting.values()}
    known = {(a.phoneNumber, a.assignedAt): a for a in store.load_assignments(numbers)}
    for assignment in fresh:  # may not be readable yet where inserts are asynchronous
        key = (assignment.phoneNumber, assignment.assignedAt)
        if key not in known or known[key].version <= assignment.version:
            known[key] = assignment
    for sid, fact in wanting.items():
        facts[sid] = attribute(
            fact, assignment_at(known.values(), tracked_number(fact), fact.startedAt)
        )


class AnalyticsConsumer:
    """Runs the pipeline in a background thread; `stop()` ends it cleanly."""

    def __init__(
        self,
        config: Config,
        store: Store,
        group_id: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.group_id = group_id or config.group_id
        self.stats = ConsumerStats()
        self.error: BaseException | None = None
        self._guard = InvalidRatioGuard(config.invalid_window, config.max_invalid_ratio)
        self._batch = self._new_batch()
        self._stopping = threading.Event()
        self._drain = True
        self._thread: threading.Thread | None = None
        self._producer: kafka.EventProducer | None = None
        self._paused = False
        self._retry_at: float | None = None
        self._retry_delay = _RETRY_FIRST_SECONDS

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run_in_thread, name="analytics-consumer", daemon=True
        )
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop polling; with `drain` the open batch is written and committed first.

        `drain=False` leaves the open batch unwritten and uncommitted, as a
        crash would: those messages are read again by the next consumer.
        """
        self._drain = drain
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.error is None

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException:
            pass  # run() recorded it in self.error and logged it

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
            if self._drain and not self._batch.empty:
                if not self._flush(consumer):
                    log.warning("last batch not written on stop; it will be read again")
        except BaseException as err:
            self.error = err
            log.critical("analytics consumer stopped: %s", err, exc_info=True)
            raise
        finally:
            consumer.close()
            self._producer.flush(5)
            log.info("consumer stopped")

    # -- the pipeline ------------------------------------------------------------

    def _step(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if self._retry_at is not None:
            if now < self._retry_at:
                # Paused: polling keeps the group membership alive while we wait.
                self._poll(consumer, min(_POLL_SECONDS, self._retry_at - now))
            else:
                self._flush(consumer)
            return
        timeout = min(_POLL_SECONDS, max(0.0, self._batch.seconds_left(now)))
        self._poll(consumer, timeout)
        if self._batch.closed(time.monotonic()):
            self._flush(consumer)

    def _poll(self, consumer: Consumer, timeout: float) -> None:
        for msg in consumer.consume(num_messages=self._batch.room, timeout=timeout):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal():
                    raise KafkaException(error)
                log.warning("kafka reported: %s", error)
                continue
            self.stats.messages += 1
            self._batch.add(msg, self._decode(msg))

    def _decode(self, msg: Message) -> Event | None:
        """The message's event, or None after sending it to the dead-letter topic."""
        try:
            event = decode(msg.value())
        except InvalidEvent as err:
            self.stats.invalid += 1
            assert self._producer is not None
            kafka.dead_letter(self._producer, self.config.topics, msg, str(err), CONSUMER_NAME)
            log.warning(
                "invalid message dead-lettered: %s",
                err,
                extra={"topic": msg.topic()},
            )
            self._guard.record(True)
            return None
        self._guard.record(False)
        return event

    def _flush(self, consumer: Consumer) -> bool:
        """Write the batch, then commit it; on a failed write pause and retry later."""
        batch = self._batch
        try:
            result = self._write(batch)
        except Exception as err:  # any store failure means: pause, retry later
            self.stats.write_failures += 1
            log.error("write failed, partitions paused, retry in %.1fs: %s", self._retry_delay, err)
            if not self._paused:
                consumer.pause(consumer.assignment())
                self._paused = True
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX_SECONDS)
            return False
        self._commit(consumer, batch)
        self.stats.batches += 1
        self.stats.events_written += result.events_written
        self.stats.duplicates_skipped += result.duplicates_skipped
        self.stats.facts_written += result.facts_written
        self._batch = self._new_batch()
        self._retry_at = None
        self._retry_delay = _RETRY_FIRST_SECONDS
        if self._paused:
            consumer.resume(consumer.assignment())
            self._paused = False
        return True

    def _write(self, batch: Batch) -> WriteResult:
        return write(self.store, batch.events, batch.payloads)

    def _commit(self, consumer: Consumer, batch: Batch) -> None:
        """Commit exactly this batch's offsets, now that its write is durable."""
        try:
            consumer.commit(offsets=batch.commit_offsets(), asynchronous=False)
        except KafkaException as err:
            # The write stands; an uncommitted batch is only read again.
            log.warning("offset commit failed, the batch will be re-read: %s", err)
            return
        self.stats.commits += 1

    # -- rebalances ----------------------------------------------------------------

    def _new_batch(self) -> Batch:
        return Batch(self.config.batch_size, self.config.batch_seconds)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", [p.partition for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand over cleanly: finish the open batch while we still own its
        # partitions. If that fails, drop it; the next owner re-reads it. Not
        # after a fatal error or a crash-like stop(drain=False) (close() also
        # revokes): then the batch is left to be read again.
        abandon = self.error is not None or (self._stopping.is_set() and not self._drain)
        if not self._batch.empty and self._retry_at is None and not abandon:
            try:
                self._write(self._batch)
                self._commit(consumer, self._batch)
            except Exception as err:
                log.warning("batch dropped on revoke, it will be re-read: %s", err)
        self._reset()

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost: %s", [p.partition for p in partitions])
        self._reset()

    def _reset(self) -> None:
        self._batch = self._new_batch()
        self._paused = False
        self._retry_at = None
        self._retry_delay = _RETRY_FIRST_SECONDS
