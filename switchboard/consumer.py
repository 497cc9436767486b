"""The Kafka consumer machinery every service's consumer is built from, in arroyo's shape.

A service's consumer is a short pipeline: poll -> decode -> (batch) -> write
-> commit. What differs per service is its decode and write steps; the
parts here are what does not: reading what a poll returned (`messages`),
decoding with dead-lettering and the invalid-message ratio guard
(`Decoder`), the offsets a batch or a handled message lets the consumer
commit, committed only after the write and throttled (`Offsets`),
back-pressure by pausing the assignment, never by sleeping (`Pauser`), the
retry delay of a write ClickHouse or the database refused (`Backoff`), the
thread a consumer runs in with its start/stop and health (`ConsumerThread`),
what its metrics read: events consumed per type and lag per partition
(`Progress`), and the writer-first turn at the GIL for a consumer whose writer runs in a
thread of its own (`WriterFirst`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

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
    """The decode step: a message's value into a T, or to the dead-letter topic with the reason.

    `decode` raises InvalidEvent for a message that can never be handled;
    every message counts towards the invalid-ratio guard.
    """

    def __init__(
        self,
        decode: Callable[[bytes | None], T],
        producer: Callable[[], kafka.EventProducer | None],
        topics: Topics,
        consumer_name: str,
        guard: InvalidRatioGuard,
    ) -> None:
        self._decode = decode
        self._producer = producer
        self._topics = topics
        self._name = consumer_name
        self._guard = guard
        self.invalid = 0

    def __call__(self, msg: Message) -> T | None:
        """The message's value decoded, or None after dead-lettering it."""
        try:
            value = self._decode(msg.value())
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


class ConsumerThread(ABC):
    """A consumer's start/stop and health: `run` in a thread of its own until `stop`.

    `run` records a fatal error in `error` (which the health endpoints
    report) and raises it; `alive` is what readiness checks.
    """

    thread_name = "consumer"

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self.error: BaseException | None = None
        self._stopping = stopping if stopping is not None else threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def run(self) -> None:
        """The loop, in the calling thread, until stop() or a fatal error."""

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run_in_thread, name=self.thread_name, daemon=True
        )
        self._thread.start()

    def _request_stop(self, timeout: float) -> None:
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
