"""switchboard.consumer.StreamProcessor on a real broker, with a decode and a write of its own.

The items are plain JSON objects (the framework knows nothing of events);
the write step records what it was given and can be held, or made to fail.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from switchboard import kafka
from switchboard.consumer import (
    Batch,
    Settings,
    StreamProcessor,
    TooManyInvalidMessages,
)
from tests.kafka_read import committed_offsets, read_topic
from tests.kernel.json_items import decode
from tests.support import wait_until

Item = dict[str, Any]
Start = Callable[..., StreamProcessor[Item]]
Publish = Callable[..., None]
Committed = Callable[[], int]


class Writes:
    """A write step: records each batch written; `hold` keeps a write waiting, `fail` refuses."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.attempts: list[tuple[list[int], int, bool]] = []  # items, attempt, paused then
        self.started = threading.Event()
        self.hold = threading.Event()
        self.hold.set()
        self.fail = fail
        self.processor: StreamProcessor[Item] | None = None

    def __call__(self, batch: Batch[Item]) -> None:
        items = [item["n"] for item in batch.items]
        paused = self.processor is not None and self.processor.paused
        self.attempts.append((items, batch.attempts, paused))
        self.started.set()
        assert self.hold.wait(60), "the test never let the write go on"
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the store refused the write")
        self.batches.append(items)

    @property
    def written(self) -> list[int]:
        return [n for batch in self.batches for n in batch]


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[kafka.EventProducer]:
    made = kafka.EventProducer(kafka_bootstrap)
    yield made
    made.close()


@pytest.fixture
def publish(producer: kafka.EventProducer, topics: kafka.Topics) -> Publish:
    """Publishes items {"n": ...} (or raw values) under one key, so in order on one partition."""

    def send(*values: int | bytes) -> None:
        for value in values:
            raw = value if isinstance(value, bytes) else json.dumps({"n": value}).encode()
            producer.publish_raw(topics.call_events, raw, "one-key", timeout=10)

    return send


@pytest.fixture
def group() -> str:
    return f"processor-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start(kafka_bootstrap: str, topics: kafka.Topics, group: str) -> Iterator[Start]:
    """Starts processors on this test's call-events topic (settings as keywords); stops them."""
    running: list[StreamProcessor[Item]] = []

    def build(
        write: Callable[[Batch[Item]], object], start: bool = True, **overrides: Any
    ) -> StreamProcessor[Item]:
        hooks = {k: overrides.pop(k) for k in ("housekeeping", "on_assign") if k in overrides}
        settings = Settings(
            bootstrap=kafka_bootstrap,
            group_id=group,
            subscribe=(topics.call_events,),
            topics=topics,
            **{"batch_size": 100, "batch_seconds": 0.1, "retry_first": 0.05, **overrides},
        )
        processor = StreamProcessor(
            "framework-test", settings, decode, write, lambda item: "test.item", **hooks
        )
        if isinstance(write, Writes):
            write.processor = processor
        if start:
            processor.start()
        running.append(processor)
        return processor

    yield build
    for processor in running:
        processor.stop(timeout=30)


@pytest.fixture
def committed(kafka_bootstrap: str, topics: kafka.Topics, group: str) -> Committed:
    """How many of the topic's messages the processors' group has committed."""

    def total() -> int:
        return sum((committed_offsets(kafka_bootstrap, group, topics.call_events) or {}).values())

    return total


def test_a_batch_closes_on_size_before_its_age_and_its_offsets_are_committed_after_its_write(
    publish: Publish, start: Start, committed: Committed
) -> None:
    writes = Writes()
    publish(1, 2, 3, 4, 5)
    processor = start(writes, batch_size=2, batch_seconds=3600)
    wait_until(lambda: committed() == 4)
    assert writes.batches == [[1, 2], [3, 4]]  # the fifth waits for its batch's age
    processor.stop()  # draining: the open batch is written and committed
    assert writes.batches == [[1, 2], [3, 4], [5]]
    assert committed() == 5
    assert (processor.stats.messages, processor.stats.batches) == (5, 3)


def test_a_batch_closes_on_its_age_when_it_is_not_full(
    publish: Publish, start: Start, committed: Committed
) -> None:
    writes = Writes()
    publish(1, 2, 3)
    start(writes, batch_size=1000, batch_seconds=0.2)
    wait_until(lambda: committed() == 3)
    assert writes.written == [1, 2, 3]


def test_nothing_is_committed_while_the_write_has_not_returned(
    publish: Publish, start: Start, committed: Committed
) -> None:
    writes = Writes()
    writes.hold.clear()
    publish(1, 2, 3)
    start(writes)
    assert writes.started.wait(30)
    assert committed() == 0  # the write is still running
    writes.hold.set()
    wait_until(lambda: committed() == 3)
    assert writes.written == [1, 2, 3]


def test_a_failed_write_is_retried_with_the_same_batch_while_the_partitions_are_paused(
    publish: Publish, start: Start, committed: Committed
) -> None:
    writes = Writes(fail=2)
    publish(1, 2, 3)
    processor = start(writes, batch_size=3, batch_seconds=3600)
    wait_until(lambda: committed() == 3)
    assert writes.attempts == [([1, 2, 3], 1, False), ([1, 2, 3], 2, True), ([1, 2, 3], 3, True)]
    assert writes.batches == [[1, 2, 3]]
    assert processor.stats.write_failures == 2
    wait_until(lambda: not processor.paused, message="resumed after the write succeeded")


def test_a_slow_write_with_the_next_batch_full_pauses_the_partitions_until_it_is_done(
    publish: Publish, start: Start, committed: Committed
) -> None:
    writes = Writes()
    writes.hold.clear()
    publish(1, 2, 3, 4, 5, 6)
    processor = start(writes, batch_size=2, batch_seconds=3600)
    wait_until(lambda: processor.paused, message="paused behind the held write")
    assert processor.alive and writes.batches == []
    writes.hold.set()
    wait_until(lambda: committed() == 6)
    assert writes.batches == [[1, 2], [3, 4], [5, 6]]
    wait_until(lambda: not processor.paused, message="resumed")


def test_a_write_that_notes_its_progress_resumes_there_when_retried(
    publish: Publish, start: Start, committed: Committed
) -> None:
    handled: list[int] = []

    def one_by_one(batch: Batch[Item]) -> None:
        for index in range(batch.done, len(batch.items)):
            n = batch.items[index]["n"]
            if n == 2 and batch.attempts == 1:
                raise RuntimeError("the database went away")
            handled.append(n)
            batch.done = index + 1

    publish(1, 2, 3)
    start(one_by_one, batch_size=3, batch_seconds=3600)
    wait_until(lambda: committed() == 3)
    assert handled == [1, 2, 3]


def test_an_invalid_message_is_dead_lettered_with_the_reason_and_committed_past(
    kafka_bootstrap: str,
    topics: kafka.Topics,
    publish: Publish,
    start: Start,
    committed: Committed,
) -> None:
    writes = Writes()
    publish(1, b"garbage", 2)
    processor = start(writes)
    wait_until(lambda: committed() == 3)
    assert writes.written == [1, 2]
    assert processor.stats.invalid == 1 and processor.alive
    [letter] = read_topic(kafka_bootstrap, topics.dead_letters, expect=1)
    assert letter["value"]["consumer"] == "framework-test"
    assert letter["value"]["value"] == "garbage"
    assert letter["value"]["reason"].startswith("not JSON")


def test_past_the_invalid_ratio_the_processor_stops_loudly(
    publish: Publish, start: Start, committed: Committed
) -> None:
    writes = Writes()
    publish(*[b"garbage"] * 6)
    processor = start(writes, invalid_window=4, max_invalid_ratio=0.5)
    wait_until(lambda: processor.error is not None)
    assert isinstance(processor.error, TooManyInvalidMessages)
    wait_until(lambda: not processor.alive)
    assert writes.batches == []
    assert committed() == 0  # stopped, not drained into the DLQ


def test_a_stop_without_drain_leaves_the_open_batch_to_be_read_again(
    publish: Publish, start: Start, committed: Committed
) -> None:
    first_writes, second_writes = Writes(), Writes()
    publish(1, 2, 3)
    first = start(first_writes, batch_seconds=3600)
    wait_until(lambda: first.stats.messages == 3)
    first.stop(drain=False)  # as a crash would
    assert first_writes.batches == []
    assert committed() == 0

    second = start(second_writes, batch_seconds=3600)
    wait_until(lambda: second.stats.messages == 3)
    second.stop()
    assert second_writes.batches == [[1, 2, 3]]
    assert committed() == 3


def test_housekeeping_runs_in_the_loop_and_the_assignment_is_announced(
    topics: kafka.Topics, start: Start
) -> None:
    turns: list[float] = []
    assigned: list[TopicPartition] = []
    start(Writes(), housekeeping=turns.append, on_assign=assigned.extend)
    wait_until(lambda: len(turns) > 1 and assigned)
    assert {tp.topic for tp in assigned} == {topics.call_events}
