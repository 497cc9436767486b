"""Kafka set-up shared by every service: topic names, producer, consumer, DLQ.

Producers are idempotent with acks=all, and `EventProducer.publish` returns
only after the broker acknowledged the event (or raises), so a caller that
answers HTTP after it knows the event is durable. `send` hands the event
over and returns its `Acknowledgement` at once, for a caller with other
work to do while the broker answers. Call events are keyed by
CallSid so one call's events stay in order on one partition.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from switchboard import events
from switchboard.metrics import dead_letter_counter
from switchboard.settings import (
    ConfigError,
    env_int,
    env_str,
    is_production,
    require_in_production,
)

log = logging.getLogger(__name__)

_DAY_MS = 24 * 3600 * 1000


class PublishError(Exception):
    """The broker did not acknowledge an event in time."""


@dataclass(frozen=True)
class Topics:
    """Topic names, and the replication `ensure_topics` creates them with.

    A prefix lets tests and deployments keep their topics apart. One replica
    suits the single development broker; production needs 3 replicas with 2
    in sync, so that losing a broker loses no acknowledged event (producers
    send with acks=all).
    """

    prefix: str = "switchboard."
    replication_factor: int = 1
    min_insync_replicas: int = 1
    # How long call events and dead letters (which carry callers' numbers) stay on
    # Kafka: an erased number is gone from the topics after this (docs/security.md).
    events_retention_days: int = 7

    def __post_init__(self) -> None:
        if self.events_retention_days < 1:
            raise ConfigError(
                f"KAFKA_EVENTS_RETENTION_DAYS must be at least 1, got {self.events_retention_days}"
            )
        if self.replication_factor < 1:
            raise ConfigError(
                f"KAFKA_REPLICATION_FACTOR must be at least 1, got {self.replication_factor}"
            )
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ConfigError(
                "KAFKA_MIN_INSYNC_REPLICAS must be between 1 and KAFKA_REPLICATION_FACTOR "
                f"({self.replication_factor}), got {self.min_insync_replicas}"
            )

    @classmethod
    def from_env(cls) -> Topics:
        """KAFKA_TOPIC_PREFIX and the replication settings; unsafe ones refused in production."""
        production = is_production()
        replication = env_int("KAFKA_REPLICATION_FACTOR", 3 if production else 1)
        in_sync = env_int("KAFKA_MIN_INSYNC_REPLICAS", 2 if production else 1)
        require_in_production(
            replication >= 3, f"KAFKA_REPLICATION_FACTOR must be at least 3, got {replication}"
        )
        require_in_production(
            in_sync >= 2, f"KAFKA_MIN_INSYNC_REPLICAS must be at least 2, got {in_sync}"
        )
        return cls(
            env_str("KAFKA_TOPIC_PREFIX", "switchboard."),
            replication,
            in_sync,
            env_int("KAFKA_EVENTS_RETENTION_DAYS", 7),
        )

    @property
    def call_events(self) -> str:
        return f"{self.prefix}call-events"

    @property
    def number_events(self) -> str:
        return f"{self.prefix}number-events"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dead-letters"

    @property
    def client_events(self) -> str:
        """Per-client facts (client.settings-changed), keyed by clientId, compacted."""
        return f"{self.prefix}client-events"


def topic_specs(
    topics: Topics,
    partitions: int = 3,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
) -> list[NewTopic]:
    """The project's topics as `ensure_topics` creates them; replication from `topics`
    unless given here."""
    replicas = replication_factor or topics.replication_factor
    in_sync = {"min.insync.replicas": str(min_insync_replicas or topics.min_insync_replicas)}
    compacted = {"cleanup.policy": "compact", **in_sync}
    retained = {"retention.ms": str(topics.events_retention_days * _DAY_MS), **in_sync}
    # A caller.erased event with the number is superseded under its key at once;
    # compaction must not wait for the segment to fill to drop it.
    clients = {"max.compaction.lag.ms": str(_DAY_MS), **compacted}
    return [
        NewTopic(topics.call_events, partitions, replicas, config=dict(retained)),
        NewTopic(topics.dead_letters, 1, replicas, config=dict(retained)),
        NewTopic(topics.number_events, partitions, replicas, config=dict(compacted)),
        NewTopic(topics.client_events, partitions, replicas, config=clients),
    ]


def ensure_topics(
    bootstrap: str,
    topics: Topics,
    partitions: int = 3,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
) -> None:
    """Create the project's topics if they are missing (safe to run twice).

    Topics that already exist are left as they are (deploy/README.md says how
    to raise their replication).
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = topic_specs(topics, partitions, replication_factor, min_insync_replicas)
    existing = admin.list_topics(timeout=10).topics
    missing = [t for t in wanted if t.topic not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=10).items():
        try:
            future.result(timeout=15)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("topic ready", extra={"topic": name})


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        # Shorter than librdkafka's default: every webhook waits for its
        # acknowledgement, so linger is latency the caller hears
        # (docs/performance.md has the trade-off as measured).
        "linger.ms": 2,
        # A produce request held back by Nagle's algorithm until the last one
        # is acknowledged would be a latency tail of its own.
        "socket.nagle.disable": True,
        "compression.type": "lz4",
        "message.timeout.ms": 30000,
        "logger": logging.getLogger("librdkafka"),
    }
    config.update(overrides)
    return config


def consumer_config(bootstrap: str, group_id: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "logger": logging.getLogger("librdkafka"),
    }
    config.update(overrides)
    return config


class Acknowledgement:
    """The broker's answer for one sent event, awaited with `wait`."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: KafkaError | None = None

    def report(self, err: KafkaError | None, msg: Message) -> None:
        self._error = err
        self._done.set()

    def wait(self, timeout: float) -> None:
        """Return once the broker acknowledged the event; raise PublishError otherwise."""
        if not self._done.wait(timeout):
            raise PublishError(f"no acknowledgement from Kafka within {timeout:.1f}s")
        if self._error is not None:
            raise PublishError(f"Kafka rejected the event: {self._error}")


class EventProducer:
    """Publishes validated events and waits for the broker's acknowledgement.

    One background thread serves the delivery reports (librdkafka's poll);
    each publisher waits on its own event, woken the moment its report
    arrives. (Publishers polling for themselves would each sit in poll()
    until it returned, however early another thread had served their
    report, which caps a threaded server at a few hundred publishes a
    second.)
    """

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._producer = Producer(producer_config(bootstrap, **overrides))
        self._closing = threading.Event()
        self._closed = False
        self._reporter = threading.Thread(
            target=self._serve_delivery_reports, name="kafka-delivery-reports", daemon=True
        )
        self._reporter.start()

    def _serve_delivery_reports(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)

    def publish(self, topic: str, event: events.Event, key: str | None, timeout: float) -> None:
        self.send(topic, event, key).wait(timeout)

    def send(self, topic: str, event: events.Event, key: str | None) -> Acknowledgement:
        """Validate and hand the event to the producer; `wait` on the result."""
        events.validate(event.to_dict())
        return self.send_raw(topic, event.to_json(), key)

    def publish_raw(self, topic: str, value: bytes, key: str | None, timeout: float) -> None:
        self.send_raw(topic, value, key).wait(timeout)

    def send_raw(self, topic: str, value: bytes, key: str | None) -> Acknowledgement:
        """Hand the event to the producer and return at once; `wait` on the result."""
        ack = Acknowledgement()
        try:
            self._producer.produce(
                topic, value=value, key=key.encode() if key else None, on_delivery=ack.report
            )
        except (BufferError, KafkaException) as err:
            raise PublishError(f"could not enqueue event: {err}") from err
        except RuntimeError as err:  # librdkafka's "Producer has been closed"
            raise PublishError(f"could not enqueue event: {err}") from err
        return ack

    def flush(self, timeout: float = 10.0) -> int:
        if self._closed:
            return 0
        return int(self._producer.flush(timeout))

    def topics(self, timeout: float) -> set[str]:
        """The topics the broker has (KafkaException when it does not answer in time):
        a readiness check through the producer, so no second client is left to close."""
        return set(self._producer.list_topics(timeout=timeout).topics)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, drop what the broker never took (its publishers were told so),
        then let librdkafka's producer go, so its threads stop and stop logging
        (a producer left open keeps reporting a broker that went away). Safe to
        call twice."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._reporter.join(1.0)
        if self._producer.flush(timeout):
            self._producer.purge()
            self._producer.flush(0)
        self._producer.close()


def dead_letter(
    producer: EventProducer, topics: Topics, msg: Message, reason: str, consumer: str
) -> None:
    """Send a message a consumer could not process to the dead-letter topic."""
    raw = msg.value() or b""
    key = (msg.key() or b"").decode("utf-8", "replace")
    envelope: dict[str, Any] = {
        "reason": reason,
        "consumer": consumer,
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": key,
        "value": raw.decode("utf-8", "replace"),
        "deadAt": events.utc_now_iso(),
    }
    producer.publish_raw(
        topics.dead_letters, json.dumps(envelope).encode(), key or None, timeout=10
    )
    dead_letter_counter().labels(consumer).inc()
