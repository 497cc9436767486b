"""Reading what landed on a topic, for assertions, and where a consumer group stands.

`read_topic` reads a topic with a real consumer in a fresh group.
`wait_committed_past` is the one way a test shows that "nothing else
happened": a consumer commits only after its work is durable, so once its
group has committed past the end offsets noted at the point in question,
everything it would do with those messages is done, and an assertion that
nothing more came of them sees all there is (no fixed sleep).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tests.support import wait_until

# A fresh broker answers these while its group coordinator is still loading.
_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


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
            key = msg.key()
            found.append(
                {
                    "key": key.decode() if key else None,
                    "value": json.loads(msg.value() or b"null"),
                    "partition": msg.partition(),
                }
            )
    finally:
        consumer.close()
    return found


def partitions_of(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The topic's end offset per partition: where its next message will go."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        return {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in partitions_of(consumer, topic)
        }
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int] | None:
    """The group's committed offset per partition of `topic` (0 where none yet).

    None while the broker's group coordinator is not ready, so a poll asks again.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        committed = consumer.committed(partitions_of(consumer, topic), timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in committed}
    except KafkaException as err:
        if err.args[0].code() in _NOT_READY:
            return None
        raise
    finally:
        consumer.close()


def wait_committed_past(
    bootstrap: str,
    group_id: str,
    topic: str,
    marks: dict[int, int] | None = None,
    timeout: float = 30.0,
) -> None:
    """Wait until `group_id` has committed, on every partition of `topic`, at
    least the offsets in `marks` (by default the topic's end offsets now)."""
    wanted = end_offsets(bootstrap, topic) if marks is None else marks

    def past() -> bool:
        committed = committed_offsets(bootstrap, group_id, topic)
        return committed is not None and all(
            committed.get(partition, 0) >= offset for partition, offset in wanted.items()
        )

    wait_until(past, timeout=timeout, message=f"{group_id} committed past {wanted} on {topic}")
