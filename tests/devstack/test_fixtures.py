"""The session's infrastructure fixtures give real, isolated servers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from switchboard.kafka import Topics, consumer_config, producer_config
from tests.support import ServiceProcess, wait_until


def test_kafka_round_trips_a_message_on_fresh_topics(kafka_bootstrap: str, topics: Topics) -> None:
    producer = Producer(producer_config(kafka_bootstrap))
    producer.produce(topics.call_events, key=b"CA1", value=b"hello")
    assert producer.flush(10) == 0
    producer.close()

    consumer = Consumer(consumer_config(kafka_bootstrap, f"{topics.prefix}check"))
    consumer.subscribe([topics.call_events])
    try:
        message = wait_until(lambda: consumer.poll(0.5), timeout=30, message="one message")
        assert message.error() is None
        assert (message.key(), message.value()) == (b"CA1", b"hello")
    finally:
        consumer.close()


def test_each_test_gets_its_own_topic_prefix(topics: Topics) -> None:
    assert topics.prefix.startswith("t") and topics.prefix.endswith(".")
    assert topics.prefix != "switchboard."


def test_postgres_is_a_real_server_with_an_empty_database_per_test(
    postgres_url: str, pg_url: str
) -> None:
    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SELECT version()").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        name = conn.execute("SELECT current_database()").fetchone()
    assert version is not None and version[0].startswith("PostgreSQL")
    assert tables == (0,)
    assert name is not None and name[0].startswith("t_")
    assert pg_url.startswith("postgresql://")
    with psycopg.connect(postgres_url) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert superuser.fetchone() == (True,)


def test_clickhouse_database_is_fresh_and_usable(ch_client: Any, ch_database: str) -> None:
    ch_client.command(
        f"CREATE TABLE {ch_database}.facts (id String, n UInt32) ENGINE = MergeTree ORDER BY id"
    )
    ch_client.insert(f"{ch_database}.facts", [["a", 1], ["b", 2]], column_names=["id", "n"])
    assert ch_client.command(f"SELECT sum(n) FROM {ch_database}.facts") == 3


def test_ch_url_names_a_chdb_folder(ch_url: str) -> None:
    assert ch_url.startswith("chdb:///")


def test_service_process_reports_the_log_when_start_up_fails() -> None:
    service = ServiceProcess("does_not_exist", env={}, startup_timeout=20)
    with pytest.raises(RuntimeError, match="No module named"):
        service.start()
    assert not service.alive()


def test_kafka_cluster_ids_never_look_like_an_option() -> None:
    from devstack.kafka import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
