"""Bad requests to router's management API: a 4xx with a reason, no row, no event.

router runs in-process (Flask's test client) on this test's own PostgreSQL
database and Kafka topics, with one client and one number in place so that
paths name real objects. Hypothesis draws calls without the admin token
(even with valid bodies), and calls with it whose body can only be refused:
not JSON, not UTF-8, not an object, an unknown field, a known field holding a
value of the wrong kind, the wrong media type, or over 64 KiB (413). None may
get a 5xx or a 2xx; afterwards every table holds the rows it held before and
no topic holds a new event.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from psycopg import sql

from services.router.app import create_app, runtime_of
from services.router.config import Config
from switchboard.kafka import Topics
from tests.fuzz.bad_input import BadRequest, bad_management_requests, oversized_admin_requests
from tests.fuzz.conftest import FUZZ, FUZZ_LARGE, refused_as_expected, send

ADMIN = "fuzz-admin-token"
NUMBER = "+14155550100"


@pytest.fixture
def router(pg_url: str, kafka_bootstrap: str, topics: Topics) -> Iterator[Flask]:
    config = Config(
        database_url=pg_url,
        admin_token=ADMIN,
        kafka_bootstrap=kafka_bootstrap,
        topics=topics,
        public_base_url="https://calls.example.com",
        refresh_interval_seconds=300.0,
        outbox_interval_seconds=0.5,
    )
    app = create_app(config)
    yield app
    runtime_of(app).close()


@pytest.fixture
def client_id(router: Flask) -> str:
    """One client with one number: the objects the fuzzed paths name."""
    http = router.test_client()
    auth = {"Authorization": f"Bearer {ADMIN}"}
    created = http.post("/api/clients", json={"name": "Smile Dental"}, headers=auth)
    assert created.status_code == 201, created.get_json()
    client: str = created.get_json()["id"]
    assigned = http.post(
        f"/api/clients/{client}/numbers",
        json={"phoneNumber": NUMBER, "forwardTo": "+14155559999"},
        headers=auth,
    )
    assert assigned.status_code == 201, assigned.get_json()
    return client


def row_counts(dsn: str) -> dict[str, int]:
    """Rows in every table of the database."""
    with psycopg.connect(dsn) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            )
        ]
        counts = {}
        for table in tables:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts


def messages_on(bootstrap: str, topics: Topics) -> dict[str, int]:
    """How many messages each of the project's topics holds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "fuzz-counter"})
    try:
        counts = {}
        for topic in (
            topics.call_events,
            topics.number_events,
            topics.client_events,
            topics.dead_letters,
        ):
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            counts[topic] = sum(
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions
            )
        return counts
    finally:
        consumer.close()


def settled(
    router: Flask, pg_url: str, kafka_bootstrap: str, topics: Topics
) -> tuple[dict[str, int], dict[str, int]]:
    """Rows and topic sizes once the outbox has published everything it holds."""
    runtime_of(router).relay.drain()
    return row_counts(pg_url), messages_on(kafka_bootstrap, topics)


def test_bad_management_requests_get_a_4xx_never_a_5xx_and_change_nothing(
    router: Flask, client_id: str, pg_url: str, kafka_bootstrap: str, topics: Topics
) -> None:
    http: FlaskClient = router.test_client()
    before = settled(router, pg_url, kafka_bootstrap, topics)

    @FUZZ
    @given(bad_management_requests(client_id, NUMBER, ADMIN))
    def refused(bad: BadRequest) -> None:
        problem = refused_as_expected(bad, send(http, bad))
        assert problem is None, f"{bad!r}: {problem}"

    refused()

    after = settled(router, pg_url, kafka_bootstrap, topics)
    assert after[0] == before[0], "rows changed by refused requests"
    assert after[1] == before[1], "events produced by refused requests"


def test_management_bodies_over_64_kib_get_413_and_change_nothing(
    router: Flask, client_id: str, pg_url: str, kafka_bootstrap: str, topics: Topics
) -> None:
    http: FlaskClient = router.test_client()
    before = settled(router, pg_url, kafka_bootstrap, topics)

    @FUZZ_LARGE
    @given(oversized_admin_requests(client_id, NUMBER, ADMIN))
    def refused(bad: BadRequest) -> None:
        problem = refused_as_expected(bad, send(http, bad))
        assert problem is None, f"{bad!r}: {problem}"

    refused()

    after = settled(router, pg_url, kafka_bootstrap, topics)
    assert after[0] == before[0], "rows changed by oversized requests"
    assert after[1] == before[1], "events produced by oversized requests"
