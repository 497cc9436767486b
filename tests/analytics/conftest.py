"""Analytics fixtures: config, store, consumers and apps over this test's
ClickHouse database (on the session's chDB folder) and fresh Kafka topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask

from services.analytics.app import create_app
from services.analytics.config import Config
from services.analytics.consumer import AnalyticsConsumer
from services.analytics.store import Store
from switchboard.events import Event, decode
from switchboard.kafka import EventProducer, Topics
from tests.analytics.key_service import KeyService

ADMIN_TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="session")
def keys() -> Iterator[KeyService]:
    """Router's key introspection, as a real HTTP server; tests issue keys on it."""
    with KeyService() as service:
        yield service


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def config(
    ch_url: str, ch_database: str, kafka_bootstrap: str, topics: Topics, keys: KeyService
) -> Config:
    return Config(
        clickhouse_url=ch_url,
        clickhouse_database=ch_database,
        admin_token=ADMIN_TOKEN,
        kafka_bootstrap=kafka_bootstrap,
        topics=topics,
        batch_size=100,
        batch_seconds=0.2,
        router_url=keys.url,
        key_cache_seconds=0.0,
    )


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    """A migrated store on this test's database."""
    opened = Store.open(config.clickhouse_url, config.clickhouse_database)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[EventProducer]:
    made = EventProducer(kafka_bootstrap)
    yield made
    made.close()


@pytest.fixture
def publish(producer: EventProducer, topics: Topics) -> Callable[[list[Event]], None]:
    """Publishes events to the call-events topic keyed by CallSid, as ingress does."""

    def send(events: list[Event]) -> None:
        for event in events:
            producer.publish(topics.call_events, event, key=event.callSid, timeout=10)

    return send


ConsumerFactory = Callable[..., AnalyticsConsumer]


@pytest.fixture
def start_consumer(config: Config) -> Iterator[ConsumerFactory]:
    """Starts consumers (config overrides as keywords); stops them afterwards."""
    running: list[AnalyticsConsumer] = []

    def start(
        store: Store,
        group_id: str | None = None,
        decoder: Callable[[bytes | None], Event] = decode,
        **overrides: Any,
    ) -> AnalyticsConsumer:
        consumer = AnalyticsConsumer(
            replace(config, **overrides), store, group_id=group_id, decoder=decoder
        )
        consumer.start()
        running.append(consumer)
        return consumer

    yield start
    for consumer in running:
        consumer.stop(timeout=30)


@pytest.fixture
def make_app(config: Config) -> Iterator[Callable[..., Flask]]:
    """Builds analytics apps on this test's database and topics; closes them afterwards."""
    built: list[Flask] = []

    def build(start_consumer: bool = False, **overrides: Any) -> Flask:
        app = create_app(replace(config, **overrides), start_consumer=start_consumer)
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["analytics"].close()
