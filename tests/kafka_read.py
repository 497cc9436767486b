"""Reading what landed on a topic, for assertions (a real consumer, fresh group)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def read_topic(
    bootstrap: str,
    topic: str,
    settle: float = 1.0,
    timeout: float = 15.0,
    expect: int | None = None,
) -> list[dict[str, Any]]:
    """All messages on `topic` as dicts with key/value; waits for `expect` or until quiet."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                if expect is None and time.monotonic() - quiet_since > settle:
                    break
                if (
                    expect is not None
                    and len(found) >= expect
                    and time.monotonic() - quiet_since > settle
                ):
                    break
                continue
            quiet_since = time.monotonic()
            found.append(
                {
                    "key": msg.key().decode() if msg.key() else None,
                    "value": json.loads(msg.value()),
                    "partition": msg.partition(),
                }
            )
    finally:
        consumer.close()
    return found
