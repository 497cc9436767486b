"""switchboard.consumer, the parts every consumer is built from: pure parts, then on real Kafka."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer

from switchboard import kafka
from switchboard.consumer import (
    Backoff,
    Decoder,
    InvalidRatioGuard,
    Offsets,
    Progress,
    TooManyInvalidMessages,
    messages,
)
from tests.kafka_read import committed_offsets, partitions_of, read_topic
from tests.kernel.json_items import decode_value


def test_a_failed_write_waits_twice_as_long_each_time_up_to_the_most_then_starts_over() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.succeeded()
    assert backoff.failed() == 0.5


def test_offsets_are_due_for_a_commit_only_when_marked_and_the_interval_passed() -> None:
    offsets = Offsets(every=1.0)
    now = time.monotonic()
    assert not offsets.commit_due(now + 5)  # nothing marked
    offsets.advance({("calls", 0): 7})
    assert not offsets.commit_due(now - 1)
    assert offsets.commit_due(now + 5)
    offsets.forget()
    assert not offsets.commit_due(now + 5)


def test_one_guard_counts_invalid_messages_over_a_sliding_window() -> None:
    guard = InvalidRatioGuard(window=3, max_ratio=0.5)
    for invalid in (True, False, False, True, False):  # never 2 of the last 3
        guard.record(invalid)
    with pytest.raises(TooManyInvalidMessages, match="2 of the last 3"):
        guard.record(True)


def test_decode_dead_letters_with_the_reason_and_offsets_commit_after_the_work(
    kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    producer = kafka.EventProducer(kafka_bootstrap)
    topic = topics.call_events
    for raw in (b'{"n": 1}', b"garbage", b'{"n": 2}'):
        producer.publish_raw(topic, raw, "k", timeout=10)
    group = f"g{uuid.uuid4().hex[:8]}"
    consumer = Consumer(kafka.consumer_config(kafka_bootstrap, group))
    consumer.subscribe([topic])
    decoder = Decoder(decode_value, lambda: producer, topics, "framework-test", InvalidRatioGuard())
    offsets = Offsets(every=0.0)
    decoded: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 30
        while len(decoded) + decoder.invalid < 3 and time.monotonic() < deadline:
            for msg in messages(consumer.consume(num_messages=10, timeout=0.5)):
                value = decoder(msg)
                if value is not None:
                    decoded.append(value)
                offsets.mark(msg)  # the (nothing to) write is done: committable
        before = committed_offsets(kafka_bootstrap, group, topic) or {}
        assert set(before.values()) <= {0}  # marked, not yet committed
        assert offsets.commit(consumer)
    finally:
        consumer.close()
        producer.close()
    assert decoded == [{"n": 1}, {"n": 2}]
    assert decoder.invalid == 1
    after = committed_offsets(kafka_bootstrap, group, topic) or {}
    assert sorted(after.values())[-1] == 3 and sum(after.values()) == 3  # one key, one partition
    dead = read_topic(kafka_bootstrap, topics.dead_letters, expect=1)
    assert len(dead) == 1
    letter = dead[0]["value"]
    assert letter["consumer"] == "framework-test"
    assert letter["value"] == "garbage" and letter["reason"].startswith("not JSON")


def test_progress_lag_is_the_end_offset_past_the_committed_one_and_grows_while_paused(
    kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    producer = kafka.EventProducer(kafka_bootstrap)
    topic = topics.call_events
    for n in range(4):
        producer.publish_raw(topic, b'{"n": %d}' % n, "one-key", timeout=10)
    consumer = Consumer(kafka.consumer_config(kafka_bootstrap, f"g{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    offsets = Offsets(every=0.0)
    progress = Progress("framework-test", every=0.0)
    try:
        read = 0
        deadline = time.monotonic() + 30
        while read < 4 and time.monotonic() < deadline:
            for msg in messages(consumer.consume(num_messages=10, timeout=0.5)):
                offsets.mark(msg)
                read += 1
        progress.refresh(consumer, offsets.committed)
        behind = progress.lag()  # read, not committed: the whole partition still to do
        assert offsets.commit(consumer)
        every = {(tp.topic, tp.partition) for tp in partitions_of(consumer, topic)}
        progress.refresh(consumer, offsets.committed)  # the lag as the commit left it
        after = progress.lag()
        while set(after) != every and time.monotonic() < deadline:  # all fetched from once
            consumer.consume(num_messages=10, timeout=0.2)
            progress.refresh(consumer, offsets.committed)
            after = progress.lag()
        consumer.pause(consumer.assignment())  # held up: paused partitions are not fetched
        for n in range(3):
            producer.publish_raw(topic, b'{"n": %d}' % n, "one-key", timeout=10)
        progress.refresh(consumer, offsets.committed, paused=True)
        held = progress.lag()
    finally:
        consumer.close()
        producer.close()
    assert [lag for lag in behind.values() if lag] == [4], behind  # where its one key went
    assert set(after) == every and not any(after.values()), after
    assert [lag for lag in held.values() if lag] == [3], held  # grows while paused
