"""The erased caller's token, and how long Kafka keeps the events that carry numbers."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from switchboard.kafka import Topics, ensure_topics, topic_specs
from switchboard.privacy import caller_token
from switchboard.settings import ConfigError

DAY_MS = 24 * 3600 * 1000


def test_a_token_stands_for_one_number_under_one_secret_and_never_contains_it() -> None:
    token = caller_token("secret", "+14155550123")
    assert token == caller_token("secret", "+14155550123")
    assert token != caller_token("secret", "+14155550124")
    assert token != caller_token("another secret", "+14155550123")
    assert "4155550123" not in token and token.startswith("erased:")


def test_call_events_and_dead_letters_expire_and_client_events_compact_within_a_day() -> None:
    specs = {spec.topic: spec for spec in topic_specs(Topics("p.", events_retention_days=3))}
    assert specs["p.call-events"].config["retention.ms"] == str(3 * DAY_MS)
    assert specs["p.dead-letters"].config["retention.ms"] == str(3 * DAY_MS)
    assert specs["p.client-events"].config["cleanup.policy"] == "compact"
    assert specs["p.client-events"].config["max.compaction.lag.ms"] == str(DAY_MS)
    assert "retention.ms" not in specs["p.number-events"].config


def test_events_retention_is_read_from_the_environment_and_must_be_a_day_at_least(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", "development")
    assert Topics.from_env().events_retention_days == 7
    monkeypatch.setenv("KAFKA_EVENTS_RETENTION_DAYS", "2")
    assert Topics.from_env().events_retention_days == 2
    with pytest.raises(ConfigError, match="KAFKA_EVENTS_RETENTION_DAYS"):
        Topics("p.", events_retention_days=0)


def test_ensure_topics_creates_the_call_events_topic_with_its_retention(
    kafka_bootstrap: str,
) -> None:
    topics = Topics(f"t{uuid.uuid4().hex[:12]}.", events_retention_days=2)
    ensure_topics(kafka_bootstrap, topics)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.call_events)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["retention.ms"].value == str(2 * DAY_MS)
