"""Ingress's Kafka loop: the number-events topic, read from its start into the routing copy.

Every ingress process reads the whole compacted topic into its own
`RoutingCopy` and then follows it. It keeps no offsets: the topic holds the
newest event of every number, so reading it from the start is the rebuild,
and nothing is committed because nothing is consumed on anyone's behalf
(the partitions are assigned, no consumer group is joined). The copy is
caught up once every partition has been read to the end it had when the
loop began; `/readyz` answers 503 until then. An event that does not decode
is logged and counted, never applied: the copy keeps what it had.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from services.ingress.routing_copy import RoutingCopy
from switchboard import events
from switchboard.kafka import consumer_config

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
_MAX_RETRY_SECONDS = 5.0


class NumberEventsFollower(threading.Thread):
    """Keeps a RoutingCopy equal to the number-events topic, in the background."""

    def __init__(
        self, bootstrap: str, topic: str, copy: RoutingCopy, invalid: Any | None = None
    ) -> None:
        super().__init__(name="routing-copy", daemon=True)
        self._servers = bootstrap
        self._topic = topic
        self._copy = copy
        # A Prometheus counter of events that did not decode (None: not counted).
        self._invalid = invalid
        self._stopped = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        # A fresh group id: the assignment below joins no group and commits nothing.
        consumer = Consumer(
            consumer_config(
                self._servers,
                f"ingress-routing-copy-{uuid.uuid4().hex}",
                **{"enable.partition.eof": True},
            )
        )
        try:
            partitions = self._partitions(consumer)
            if partitions is None:
                return
            consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])
            unread = set(partitions)
            while not self._stopped.is_set():
                message = consumer.poll(POLL_SECONDS)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        unread.discard(message.partition())
                        if not unread and not self._copy.caught_up:
                            self._copy.mark_caught_up()
                            log.info("routing copy built: %d numbers", len(self._copy))
                    else:
                        log.warning("number events: %s", error)
                    continue
                self._take(message.value())
        except Exception:
            # A dead follower leaves a stale copy behind in silence: say so loudly.
            log.exception("routing copy stopped following %s", self._topic)
        finally:
            consumer.close()

    def _partitions(self, consumer: Consumer) -> list[int] | None:
        """The topic's partitions, once the broker knows the topic (None: stopped first)."""
        retry = 0.5
        while not self._stopped.is_set():
            try:
                topic = consumer.list_topics(self._topic, timeout=5).topics.get(self._topic)
                if topic is not None and topic.error is None and topic.partitions:
                    return sorted(topic.partitions)
                log.warning("topic %s not there yet, retry in %.1fs", self._topic, retry)
            except Exception as err:
                log.warning("number events unavailable, retry in %.1fs: %s", retry, err)
            self._stopped.wait(retry)
            retry = min(retry * 2, _MAX_RETRY_SECONDS)
        return None

    def _take(self, raw: bytes | None) -> None:
        if raw is None:
            return  # a tombstone: router never writes one, compaction leaves none behind
        try:
            event = events.decode(raw)
        except events.InvalidEvent as err:
            log.error("number event skipped, it does not decode: %s", err)
            if self._invalid is not None:
                self._invalid.inc()
            return
        self._copy.apply(event)
