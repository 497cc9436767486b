"""The Kafka consumer framework every service's consumer is, in arroyo's shape.

A consumer is a short pipeline: poll -> decode -> batch -> write -> commit.
`StreamProcessor` runs it; a service plugs in only its decode step (a
message into an item, or InvalidEvent) and its write step (a closed
batch made durable). The processor batches by size and age, runs the write
in a writer thread while it polls the next batch, commits a batch's offsets
only after its write, pauses the partitions instead of sleeping while the
writer cannot take more or a failed write waits for its retry, sends what
does not decode to the dead-letter topic with the reason, stops loudly past
a ratio of invalid messages, and has start/stop and health.

Its parts, each small enough to test alone: reading what a poll returned
(`messages`), the decode step with dead-lettering and the invalid-ratio
guard (`Decoder`, `InvalidRatioGuard`), the offsets committed after the
write, throttled (`Offsets`), pausing (`Pauser`), the retry delay
(`Backoff`), what the metrics read (`Progress`), and the writer's first
turn at the GIL for a writer whose engine runs without it (`WriterFirst`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from switchboard import kafka
from switchboard.events import InvalidEvent
from switchboard.kafka import Topics

log = logging.getLogger(__name__)

T = TypeVar("T")


class TooManyInvalidMessages(RuntimeError):
    """More of the recent messages were invalid than the configured ratio allows."""


class InvalidRatioGuard:
    """Stops the consumer when too many of the last `window` messages were invalid.

    As arroyo bounds its dead-letter queue: a topic full of garbage (a wrong
    topic, a producer gone mad) stops the consumer loudly instead of being
    drained into the dead-letter topic.
    """

    def __init__(self, window: int = 100, max_ratio: float = 0.5) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._invalid = 0  # how many of `_recent` are True
        self._max_ratio = max_ratio

    def record(self, invalid: bool) -> None:
        recent = self._recent
        if len(recent) == recent.maxlen and recent[0]:
            self._invalid -= 1  # about to drop out of the window
        recent.append(invalid)
        self._invalid += invalid
        if len(recent) < (recent.maxlen or 0):
            return
        if self._invalid / len(recent) > self._max_ratio:
            raise TooManyInvalidMessages(
                f"{self._invalid} of the last {len(recent)} messages were invalid "
                f"(limit {self._max_ratio:.0%}); stopping instead of dead-lettering the topic"
            )


def messages(polled: Iterable[Message]) -> Iterator[Message]:
    """The messages among what a poll returned; end-of-partition markers and warnings left out.

    A fatal error raises: the consumer cannot go on and must stop loudly.
    """
    for msg in polled:
        error = msg.error()
        if error is None:
            yield msg
            continue
        if error.code() == KafkaError._PARTITION_EOF:
            continue
        if error.fatal():
            raise KafkaException(error)
        log.warning("kafka reported: %s", error)


def position(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed message without topic, partition or offset")
    return topic, partition, offset


class Decoder(Generic[T]):
    """The decode step: a message into a T, or to the dead-letter topic with the reason.

    `decode` reads the message's value (with `whole_message`, the message
    itself) and raises InvalidEvent for a message that can never be
    handled; every message counts towards the invalid-ratio guard.
    """

    def __init__(
        self,
        decode: Callable[[Any], T],
        producer: Callable[[], kafka.EventProducer | None],
        topics: Topics,
        consumer_name: str,
        guard: InvalidRatioGuard,
        whole_message: bool = False,
    ) -> None:
        self._decode = decode
        self._whole_message = whole_message
        self._producer = producer
        self._topics = topics
        self._name = consumer_name
        self._guard = guard
        self.invalid = 0

    def __call__(self, msg: Message) -> T | None:
        """The message decoded, or None after dead-lettering it."""
        try:
            value = self._decode(msg if self._whole_message else msg.value())
        except InvalidEvent as err:
            self.invalid += 1
            self.dead_letter(msg, str(err))
            log.warning("invalid message dead-lettered: %s", err, extra={"topic": msg.topic()})
            self._guard.record(True)
            return None
        self._guard.record(False)
        return value

    def dead_letter(self, msg: Message, reason: str) -> None:
        producer = self._producer()
        assert producer is not None, "dead-lettering needs the consumer's producer"
        kafka.dead_letter(producer, self._topics, msg, reason, self._name)


class Offsets:
    """Offsets to commit per partition: marked once their work is durable, committed after.

    `mark` a message (or `advance` to a batch's offsets) only after the write
    that made it durable; `commit` stores them in Kafka, and `commit_due`
    throttles that to about once per `every` seconds. A failed commit is
    logged and kept for the next one: the work stands, and an uncommitted
    message is only read again.
    """

    def __init__(self, every: float = 1.0) -> None:
        self._every = every
        self._marked: dict[tuple[str, int], int] = {}
        # What this consumer last committed per partition, for its lag (Progress).
        self.committed: dict[tuple[str, int], int] = {}
        self._last_commit = time.monotonic()
        self.commits = 0

    def mark(self, msg: Message) -> None:
        topic, partition, offset = position(msg)
        self._marked[(topic, partition)] = offset + 1

    def advance(self, offsets: dict[tuple[str, int], int]) -> None:
        self._marked.update(offsets)

    def commit_due(self, now: float) -> bool:
        return bool(self._marked) and now - self._last_commit >= self._every

    def commit(self, consumer: Consumer) -> bool:
        """Commit what is marked; whether it was committed (nothing marked counts as done)."""
        self._last_commit = time.monotonic()
        if not self._marked:
            return True
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._marked.items())]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:
            log.warning("offset commit failed, those messages will be read again: %s", err)
            return False
        self.committed.update(self._marked)
        self._marked.clear()
        self.commits += 1
        return True

    def forget(self) -> None:
        """After a rebalance: what was marked belongs to the partitions' next owner."""
        self._marked.clear()
        self.committed.clear()


class Progress:
    """What a consumer's metrics read: events consumed per type, lag per topic partition.

    `consumed` counts events whose work is durable in `events_consumed_total`
    (a batch's counts at once: one metric call per type, not per message).
    Lag is the partition's end offset less the group's committed offset.
    It is computed in the consumer's own thread (`refresh`, throttled, from
    the loop), because confluent-kafka's Consumer must not be called from
    another thread while the loop uses it; the end offset is the one the
    last fetch brought (`get_watermark_offsets(cached=True)`, no request).
    A paused partition is not fetched, so while paused the end offsets are
    asked of the broker instead, within a short budget: a consumer held up
    by a failing write must show its lag growing. A scrape only reads the
    cached figures (`lag`), so it never waits on Kafka nor touches the
    consumer.
    """

    def __init__(self, service: str, every: float = 1.0, lookup_timeout: float = 1.0) -> None:
        from switchboard.metrics import consumed_counter

        self._counter = consumed_counter()
        self._service = service
        self._every = every
        self._lookup_timeout = lookup_timeout
        self._next_refresh = 0.0
        # Committed offsets read from Kafka, for partitions this consumer has
        # not committed since they were assigned (OFFSET_INVALID: none).
        self._looked_up: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._lag: dict[tuple[str, int], int] = {}

    def consumed(self, counts: dict[str, int]) -> None:
        """Count events processed, by type; call once their work is durable."""
        for event_type, count in counts.items():
            self._counter.labels(self._service, event_type).inc(count)

    def lag(self) -> dict[tuple[str, int], int]:
        """The lag per (topic, partition) as last refreshed; safe from any thread."""
        with self._lock:
            return dict(self._lag)

    def forget(self) -> None:
        """After a rebalance: committed offsets looked up belong to the old assignment."""
        self._looked_up.clear()

    def refresh(
        self, consumer: Consumer, committed: dict[tuple[str, int], int], paused: bool = False
    ) -> None:
        """In the consumer's thread: the lag of every assigned partition, at most once per `every`.

        `committed` is what this consumer committed itself (`Offsets.committed`);
        a partition it has not committed is looked up once, with a short
        timeout. A partition no fetch has answered yet has no end offset
        and is left out until one has. `paused`: the assignment is paused,
        its end offsets are read from the broker.
        """
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self._every
        try:
            assignment = consumer.assignment()
            self._look_up(consumer, [tp for tp in assignment if _key(tp) not in committed])
            lag = {}
            budget = now + self._lookup_timeout
            for tp in assignment:
                key = _key(tp)
                low, high = self._watermarks(consumer, tp, budget if paused else None)
                if high < 0:
                    continue
                done = committed.get(key, self._looked_up.get(key, OFFSET_INVALID))
                if done < 0:  # the group never committed here: where it starts reading
                    done = max(low, 0)
                lag[key] = max(0, high - done)
        except (KafkaException, RuntimeError) as err:
            log.debug("consumer lag not refreshed: %s", err)
            return
        with self._lock:
            self._lag = lag

    def _watermarks(
        self, consumer: Consumer, tp: TopicPartition, budget: float | None
    ) -> tuple[int, int]:
        """(low, high) from the last fetch, or from the broker while `budget` (a deadline) lasts."""
        left = (budget - time.monotonic()) if budget is not None else 0.0
        if left > 0:
            try:
                asked = consumer.get_watermark_offsets(tp, timeout=left, cached=False)
            except KafkaException as err:
                asked = None
                log.debug("end offset of %s[%d] not read: %s", tp.topic, tp.partition, err)
            if asked is not None:  # None: timed out
                return asked[0], asked[1]
        cached = consumer.get_watermark_offsets(tp, cached=True)
        return (cached[0], cached[1]) if cached is not None else (OFFSET_INVALID, OFFSET_INVALID)

    def _look_up(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        unknown = [tp for tp in partitions if _key(tp) not in self._looked_up]
        if not unknown:
            return
        for tp in unknown:  # not asked again if the lookup fails: no repeated waits
            self._looked_up[_key(tp)] = OFFSET_INVALID
        try:
            found = consumer.committed(unknown, timeout=self._lookup_timeout)
        except KafkaException as err:
            log.debug("committed offsets not read: %s", err)
            return
        for tp in found:
            self._looked_up[_key(tp)] = tp.offset


def _key(tp: TopicPartition) -> tuple[str, int]:
    return tp.topic, tp.partition


class Pauser:
    """Back-pressure: the assignment paused while the writer cannot take more, then resumed.

    The loop goes on polling while paused, so the group sees it alive and
    rebalances are served; it never sleeps instead.
    """

    def __init__(self) -> None:
        self.paused = False

    def hold(self, consumer: Consumer, hold: bool) -> None:
        if hold and not self.paused:
            consumer.pause(consumer.assignment())
            self.paused = True
        elif not hold and self.paused:
            consumer.resume(consumer.assignment())
            self.paused = False

    def forget(self) -> None:
        """After a rebalance the new assignment starts unpaused."""
        self.paused = False


class Backoff:
    """The delay before a failed write is tried again: doubling from `first` up to `most`."""

    def __init__(self, first: float, most: float) -> None:
        self._first = first
        self._most = most
        self.delay = first

    def failed(self) -> float:
        """The delay to wait now; the next one is twice as long."""
        delay = self.delay
        self.delay = min(self.delay * 2, self._most)
        return delay

    def succeeded(self) -> None:
        self.delay = self._first


@dataclass(frozen=True)
class Settings:
    """How a StreamProcessor reads, batches, commits and retries (built from a service's Config).

    A batch closes when it holds `batch_size` messages or its first message is
    `batch_seconds` old, whichever comes first (0: as soon as a poll brought
    anything). Offsets are committed after the write that made them durable,
    at most once per `commit_every` seconds (0: after every write). A write
    that fails is retried with the same batch after a delay doubling from
    `retry_first` up to `retry_most` seconds.
    """

    bootstrap: str
    group_id: str
    subscribe: tuple[str, ...]
    topics: Topics  # where the dead-letter topic is
    batch_size: int = 1
    batch_seconds: float = 0.0
    commit_every: float = 0.0
    invalid_window: int = 100
    max_invalid_ratio: float = 0.5
    retry_first: float = 0.5
    retry_most: float = 10.0


@dataclass
class ProcessorStats:
    """What a StreamProcessor counted; a service's stats extend it with its write's own counts."""

    messages: int = 0
    invalid: int = 0
    batches: int = 0
    commits: int = 0
    write_failures: int = 0


@dataclass
class Batch(Generic[T]):
    """The decoded items of the messages read since the last batch, with the offsets they reach.

    `items` and `values` (each item's message value as it arrived) run side
    by side (an invalid message, already dead-lettered, is in neither);
    `offsets` is the next offset to commit per (topic, partition) and
    `first_offsets` where the batch began on each. `attempts` counts the
    writes of this batch started so far; `done` is free for a write that
    handles items one by one to note how far it got, so a retry may resume
    there.
    """

    max_size: int
    max_age: float
    items: list[T] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    size: int = 0  # messages read, invalid ones included
    opened_at: float | None = None
    attempts: int = 0
    done: int = 0

    def add(self, msg: Message, item: T | None) -> None:
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        if item is not None:
            self.items.append(item)
            self.values.append(msg.value())
        self.size += 1
        topic, partition, offset = position(msg)
        key = (topic, partition)
        self.first_offsets.setdefault(key, offset)
        self.offsets[key] = offset + 1

    @property
    def empty(self) -> bool:
        return self.size == 0

    @property
    def full(self) -> bool:
        return self.size >= self.max_size

    @property
    def room(self) -> int:
        return max(1, self.max_size - self.size)

    def seconds_left(self, now: float) -> float:
        if self.opened_at is None:
            return self.max_age
        return self.opened_at + self.max_age - now

    def closed(self, now: float) -> bool:
        return self.full or (self.opened_at is not None and self.seconds_left(now) <= 0)


# How long one poll waits at most: the loop's turn for commits, retries and stop.
_POLL_SECONDS = 0.2
# How long one poll waits while a write runs: the loop looks for the write's end
# between polls, so the next batch goes to the writer without delay.
_WRITING_POLL_SECONDS = 0.005
# With the next batch full, how long the loop waits for the running write
# before it pauses the partitions and polls on (a rebalance waits that long).
_WAIT_FOR_WRITE_SECONDS = 1.0


class StreamProcessor(Generic[T]):
    """One Kafka consumer: poll -> decode -> batch -> write -> commit, in a thread of its own.

    A service plugs in two steps. `decode` turns a message into an item, or
    raises InvalidEvent: the message then goes to the dead-letter
    topic with the reason, and past `max_invalid_ratio` of the last
    `invalid_window` messages the processor stops loudly
    (TooManyInvalidMessages) instead of draining a topic of garbage. `write`
    makes a closed batch durable; it runs in a writer thread, one batch at
    a time, while the loop polls and decodes the next batch. Only once the
    write has returned are the batch's offsets committed (throttled to
    `commit_every`), so a crash re-delivers at most the batches in flight
    and every write must take a repeat calmly. A write that raises is
    retried with the same batch after a backoff.

    Back-pressure: while a write is retried, or while the next batch is full
    before the running write is done, the assignment is paused and the loop
    keeps polling (so the group sees it alive and rebalances are served);
    it never sleeps instead. On a rebalance the batches read are written
    and committed before the partitions go; on `stop()` too, unless
    `drain=False`, which leaves them to be read again as a crash would.

    `kind` names an item for `events_consumed_total`. `turn`, when the
    service's engine releases the GIL, gives the writer the first turn at it
    (WriterFirst). `housekeeping(now)` runs in the loop every turn (it must
    return at once unless something is due); `on_assign` sees the
    partitions assigned. `error` holds what stopped the processor, and
    `alive` is what readiness checks.
    """

    thread_name = "consumer"

    def __init__(
        self,
        name: str,
        settings: Settings,
        decode: Callable[[Message], T],
        write: Callable[[Batch[T]], object],
        kind: Callable[[T], str],
        *,
        producer: kafka.EventProducer | None = None,
        stopping: threading.Event | None = None,
        turn: WriterFirst | None = None,
        housekeeping: Callable[[float], None] | None = None,
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
        stats: ProcessorStats | None = None,
    ) -> None:
        """`producer` sends dead letters (one of its own, closed on stop, when not given)."""
        self.name = name
        self.settings = settings
        self.stats = stats if stats is not None else ProcessorStats()
        self.error: BaseException | None = None
        # Events consumed per type and lag per partition, for /metrics.
        self.progress = Progress(name)
        self._write_step = write
        self._kind = kind
        self._turn = turn
        self._housekeeping = housekeeping
        self._assigned = on_assign
        self._given_producer = producer
        self._producer = producer
        self._decoder = Decoder(
            decode,
            lambda: self._producer,
            settings.topics,
            name,
            InvalidRatioGuard(settings.invalid_window, settings.max_invalid_ratio),
            whole_message=True,
        )
        self._offsets = Offsets(settings.commit_every)
        self._pauser = Pauser()
        self._backoff = Backoff(settings.retry_first, settings.retry_most)
        self._stopping = stopping if stopping is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self._drain = True
        self._batch: Batch[T] = self._new_batch()  # the open batch, being filled
        self._writing: Batch[T] | None = None  # handed to the writer, not yet committed
        self._write_done: Future[object] | None = None  # None while a retry waits
        self._retry_at: float | None = None
        self._writer: ThreadPoolExecutor | None = None

    # -- start/stop and health -------------------------------------------------------

    def start(self) -> None:
        """Run in a thread of its own."""
        self._thread = threading.Thread(
            target=self._run_in_thread, name=self.thread_name, daemon=True
        )
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop polling; with `drain` the batches read so far are written and committed first.

        `drain=False` leaves the open batch unwritten and uncommitted, as a
        crash would (a write already running finishes, uncommitted): those
        messages are read again by the next consumer. From a signal handler,
        `timeout=0` only asks (the loop ends on its next turn).
        """
        self._drain = drain
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.error is None

    @property
    def paused(self) -> bool:
        """Whether the assignment is paused: a write is retried or holds up a full batch."""
        return self._pauser.paused

    def dead_letter(self, msg: Message, reason: str) -> None:
        """For a write: send a message it can never handle to the dead-letter topic."""
        self._decoder.dead_letter(msg, reason)

    def run(self) -> None:
        """The loop, in the calling thread, until stop() or a fatal error (kept in `error`)."""
        settings = self.settings
        try:
            consumer = Consumer(
                kafka.consumer_config(
                    settings.bootstrap, settings.group_id, **{"client.id": self.name}
                )
            )
            if self._producer is None:
                self._producer = kafka.EventProducer(settings.bootstrap)
        except BaseException as err:
            self.error = err
            log.critical("%s consumer could not start: %s", self.name, err, exc_info=True)
            raise
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-writer")
        consumer.subscribe(
            list(settings.subscribe),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info("%s consumer started on %s", self.name, ", ".join(settings.subscribe))
        try:
            while not self._stopping.is_set():
                self._step(consumer)
            if self._drain and not self._finish(consumer):
                log.warning("last batches not written on stop; they will be read again")
        except BaseException as err:
            self.error = err
            log.critical("%s consumer stopped: %s", self.name, err, exc_info=True)
            raise
        finally:
            consumer.close()
            self._writer.shutdown(wait=True)
            producer, self._producer = self._producer, self._given_producer
            if producer is not None and self._given_producer is None:
                producer.close(5)  # its delivery-report thread too
            elif producer is not None:
                producer.flush(5)
            log.info("%s consumer stopped", self.name)

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException:
            pass  # run() recorded it in self.error and logged it

    # -- the pipeline ------------------------------------------------------------------

    def _step(self, consumer: Consumer) -> None:
        if self._write_done is not None and (self._batch.full or self._pauser.paused):
            # The next batch is ready before the write is done: wait for it
            # (as long as a write in this thread would have taken) rather
            # than pause at once, since a pause drops what librdkafka fetched
            # ahead and it must be fetched again after resume. Once paused,
            # the loop waits on the write between its polls.
            wait_for = _POLL_SECONDS if self._pauser.paused else _WAIT_FOR_WRITE_SECONDS
            wait((self._write_done,), timeout=wait_for)
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
            self._offsets.advance(written.offsets)
        if self._offsets.commit_due(time.monotonic()):
            self._commit(consumer)
        if written is not None:
            self.stats.batches += 1
        self._back_pressure(consumer)
        if self._housekeeping is not None:
            self._housekeeping(now)
        self.progress.refresh(consumer, self._offsets.committed, self._pauser.paused)
        self._poll(consumer, self._poll_timeout(now))

    def _retry_due(self, now: float) -> bool:
        waiting = self._writing is not None and self._write_done is None
        return waiting and (self._retry_at is None or now >= self._retry_at)

    def _poll_timeout(self, now: float) -> float:
        if self._write_done is not None:
            return 0.0 if self._pauser.paused else _WRITING_POLL_SECONDS
        if self._writing is not None:  # a retry waits
            return min(_POLL_SECONDS, max(0.0, (self._retry_at or now) - now))
        if self._batch.empty:
            return _POLL_SECONDS
        return min(_POLL_SECONDS, max(0.0, self._batch.seconds_left(now)))

    def _poll(self, consumer: Consumer, timeout: float) -> None:
        batch, stats, turn, decoder = self._batch, self.stats, self._turn, self._decoder
        for msg in messages(consumer.consume(num_messages=batch.room, timeout=timeout)):
            stats.messages += 1
            if turn is not None:
                turn.wait_for_writer()
            item = decoder(msg)
            if item is None:
                stats.invalid += 1
            batch.add(msg, item)

    def _hand_over(self) -> None:
        """The closed batch goes to the writer; a new batch opens."""
        self._writing = self._batch
        self._write_done = self._submit(self._writing)
        self._batch = self._new_batch()

    def _submit(self, batch: Batch[T]) -> Future[object]:
        assert self._writer is not None
        return self._writer.submit(self._write, batch)

    def _write(self, batch: Batch[T]) -> object:
        """In the writer thread: the service's write step, holding the writer's turn if any."""
        if self._turn is None:
            batch.attempts += 1
            return self._write_step(batch)
        with self._turn.writing():
            batch.attempts += 1
            return self._write_step(batch)

    def _written(self) -> Batch[T] | None:
        """The write handed over has ended: its batch, to commit; None to retry it later."""
        assert self._writing is not None and self._write_done is not None
        batch, done = self._writing, self._write_done
        self._write_done = None
        try:
            done.result()
        except Exception as err:  # any failure of the write means: pause, retry later
            self.stats.write_failures += 1
            delay = self._backoff.failed()
            if self._stopping.is_set():
                log.info("write interrupted by the stop; its batch will be read again: %s", err)
            else:
                log.error("write failed, partitions paused, retry in %.1fs: %s", delay, err)
            self._retry_at = time.monotonic() + delay
            return None
        # One count per kind for the whole batch: counting stays off the per-message path.
        self.progress.consumed(Counter(map(self._kind, batch.items)))
        self._writing = None
        self._retry_at = None
        self._backoff.succeeded()
        return batch

    def _commit(self, consumer: Consumer) -> None:
        """Commit the offsets of the batches written.

        A commit that fails is logged and its offsets go with the next one:
        the write stands, and an uncommitted batch is only read again.
        """
        if self._offsets.commit(consumer):
            self.stats.commits += 1

    def _back_pressure(self, consumer: Consumer) -> None:
        """Paused while a write is retried, or while a slow write holds up a full batch."""
        hold = self._writing is not None and (self._retry_at is not None or self._batch.full)
        self._pauser.hold(consumer, hold)

    def _finish(self, consumer: Consumer) -> bool:
        """Wait for the write running, then write the open batch; commit what was written.

        Whether both were written: a batch whose write failed is left, with
        everything read after it, to be read again.
        """
        finished = True
        if self._writing is not None:
            if self._write_done is None:
                self._write_done = self._submit(self._writing)  # one last retry
            finished = self._wait_and_advance()
        if finished and not self._batch.empty:
            self._hand_over()
            finished = self._wait_and_advance()
        self._commit(consumer)
        return finished

    def _wait_and_advance(self) -> bool:
        assert self._write_done is not None
        wait((self._write_done,))
        written = self._written()
        if written is None:
            return False
        self._offsets.advance(written.offsets)
        self.stats.batches += 1
        return True

    def _new_batch(self) -> Batch[T]:
        return Batch(self.settings.batch_size, self.settings.batch_seconds)

    # -- rebalances --------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", [(p.topic, p.partition) for p in partitions])
        if self._assigned is not None:
            self._assigned(partitions)

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
        log.warning("partitions lost: %s", [(p.topic, p.partition) for p in partitions])
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


class WriterFirst:
    """The writer's turn at the GIL: the loop waits while the writer thread runs Python.

    For a consumer whose writer runs in a thread beside the polling loop:
    both share one GIL, and the writer is what bounds the ingest. The writer
    holds this turn through a write (`writing`) except inside calls into an
    engine that runs without the GIL (`outside`), and the loop takes the turn
    before each message (`wait_for_writer`), so it decodes while the writer
    waits on the engine. The loop waits at most one stretch of the writer's
    Python, far inside Kafka's max.poll.interval.ms.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self._local.held = True
            try:
                yield
            finally:
                self._local.held = False

    @contextlib.contextmanager
    def outside(self) -> Iterator[None]:
        """Around a call that runs without the GIL: the writer's turn given up meanwhile.

        Nothing for any other thread (the API's queries, the loop).
        """
        if not getattr(self._local, "held", False):
            yield
            return
        self._local.held = False
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()
            self._local.held = True

    def wait_for_writer(self) -> None:
        """Return once the writer is not running Python (at once when it is idle)."""
        with self._lock:
            pass
