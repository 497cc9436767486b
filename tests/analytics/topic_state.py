"""What Kafka holds for a test: committed offsets of a group, end offsets, messages."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

# A fresh broker answers these while its group coordinator is still loading.
_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]


def committed_total(bootstrap: str, group_id: str, topic: str) -> int:
    """Sum of the group's committed offsets over the topic (0 where none).

    -1 while the broker's group coordinator is not ready yet, so a poll
    for "everything committed" simply asks again.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        committed = consumer.committed(_partitions(consumer, topic), timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)
    except KafkaException as err:
        if err.args[0].code() in _NOT_READY:
            return -1
        raise
    finally:
        consumer.close()


def end_total(bootstrap: str, topic: str) -> int:
    """Sum of the topic's end offsets: how many messages it holds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        total = 0
        for tp in _partitions(consumer, topic):
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            total += high
        return total
    finally:
        consumer.close()


def read_json(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[Any]:
    """The first `expect` JSON messages on `topic`, read from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(
        [TopicPartition(tp.topic, tp.partition, 0) for tp in _partitions(consumer, topic)]
    )
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                found.append(json.loads(msg.value() or b"null"))
    finally:
        consumer.close()
    return found
