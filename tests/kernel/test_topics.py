"""Topics are created with the replication the deployment asks for.

`Topics.from_env` reads KAFKA_REPLICATION_FACTOR and KAFKA_MIN_INSYNC_REPLICAS
(production refuses less than 3 and 2: tests/kernel/test_production_start.py);
`ensure_topics` hands both to the broker.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from switchboard.kafka import Topics, ensure_topics, topic_specs
from switchboard.settings import ConfigError


def test_every_topic_asks_for_the_configured_replication() -> None:
    topics = Topics("p.", replication_factor=3, min_insync_replicas=2)
    specs = {spec.topic: spec for spec in topic_specs(topics)}
    assert set(specs) == {
        topics.call_events,
        topics.dead_letters,
        topics.number_events,
        topics.client_events,
    }
    for spec in specs.values():
        assert spec.replication_factor == 3
        assert spec.config["min.insync.replicas"] == "2"
    assert specs[topics.number_events].config["cleanup.policy"] == "compact"
    assert specs[topics.client_events].config["cleanup.policy"] == "compact"
    explicit = topic_specs(Topics("p."), replication_factor=5, min_insync_replicas=3)
    assert {(s.replication_factor, s.config["min.insync.replicas"]) for s in explicit} == {
        (5, "3")
    }


@pytest.mark.parametrize(
    ("replicas", "in_sync", "name"),
    [(0, 1, "KAFKA_REPLICATION_FACTOR"), (1, 2, "KAFKA_MIN_INSYNC_REPLICAS"), (3, 0, "KAFKA_MIN")],
)
def test_impossible_replication_is_refused_in_any_environment(
    monkeypatch: pytest.MonkeyPatch, replicas: int, in_sync: int, name: str
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", "development")
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", str(replicas))
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", str(in_sync))
    with pytest.raises(ConfigError, match=name):
        Topics.from_env()


def test_ensure_topics_creates_topics_with_min_insync_replicas(kafka_bootstrap: str) -> None:
    topics = Topics(f"t{uuid.uuid4().hex[:12]}.", replication_factor=1, min_insync_replicas=1)
    ensure_topics(kafka_bootstrap, topics)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    described = admin.list_topics(timeout=10).topics
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.call_events)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["min.insync.replicas"].value == "1"
    assert not config["min.insync.replicas"].is_default
    assert len(described[topics.call_events].partitions[0].replicas) == 1


def test_ensure_topics_hands_the_replication_factor_to_the_broker(kafka_bootstrap: str) -> None:
    """The test broker is a single node, so it refuses 3 replicas: proof they were asked for."""
    topics = Topics(f"t{uuid.uuid4().hex[:12]}.", replication_factor=3, min_insync_replicas=2)
    with pytest.raises(KafkaException, match="(?i)replication factor"):
        ensure_topics(kafka_bootstrap, topics)
