"""What Kafka holds for a test: committed offsets of a group, end offsets, messages."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tests.kafka_read import committed_offsets, end_offsets, partitions_of


def committed_total(bootstrap: str, group_id: str, topic: str) -> int:
    """Sum of the group's committed offsets over the topic (0 where none).

    -1 while the broker's group coordinator is not ready yet, so a poll
    for "everything committed" simply asks again.
    """
    committed = committed_offsets(bootstrap, group_id, topic)
    return -1 if committed is None else sum(committed.values())


def end_total(bootstrap: str, topic: str) -> int:
    """Sum of the topic's end offsets: how many messages it holds."""
    return sum(end_offsets(bootstrap, topic).values())


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
        [TopicPartition(tp.topic, tp.partition, 0) for tp in partitions_of(consumer, topic)]
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
