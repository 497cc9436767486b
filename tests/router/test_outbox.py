"""Events leave through the outbox: written with the change, published after it.

A change commits with its events even while Kafka is down; they are published
in order once it is back, each one exactly when its change committed.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from services.router.outbox import OutboxRelay
from switchboard.kafka import EventProducer, PublishError, Topics
from tests.kafka_read import read_topic
from tests.router.actions import AUTH, AppFactory, create_client
from tests.support import free_port, wait_until


def test_changes_commit_while_kafka_is_down_and_their_events_wait(
    make_app: AppFactory, kafka_bootstrap: str, topics: Topics
) -> None:
    app = make_app(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    http = app.test_client()
    client = create_client(http)
    http.patch(f"/api/clients/{client['id']}", json={"retentionDays": 9}, headers=AUTH)
    runtime = runtime_of(app)
    assert http.get(f"/api/clients/{client['id']}", headers=AUTH).get_json()["retentionDays"] == 9
    assert runtime.store.outbox_size() == 2

    # Kafka is back (a relay with a working producer, as after a restart).
    producer = EventProducer(kafka_bootstrap)
    relay = OutboxRelay(runtime.store, producer)
    assert relay.drain() == 2
    producer.close()

    found = read_topic(kafka_bootstrap, topics.client_events, expect=2)
    assert [m["value"]["data"]["retentionDays"] for m in found] == [None, 9]
    assert runtime.store.outbox_size() == 0


def test_a_failed_publish_keeps_that_event_and_the_ones_after_it(
    router_app: Flask, http: FlaskClient
) -> None:
    store = runtime_of(router_app).store
    runtime_of(router_app).relay.stop()
    for name in ("one", "two", "three"):
        create_client(http, name=name)
    sent: list[bytes] = []

    def publish(topic: str, key: str, payload: bytes) -> None:
        if len(sent) == 1:
            raise PublishError("broker said no")
        sent.append(payload)

    published, error = store.drain_outbox(publish)

    assert published == 1 and isinstance(error, PublishError)
    assert b'"name":"one"' in sent[0]
    assert store.outbox_size() == 2
    rest: list[bytes] = []
    assert store.drain_outbox(lambda t, k, p: rest.append(p)) == (2, None)
    assert [b'"name":"two"' in rest[0], b'"name":"three"' in rest[1]] == [True, True]


def test_relay_publishes_soon_after_a_commit(router_app: Flask, http: FlaskClient) -> None:
    create_client(http)
    store = runtime_of(router_app).store
    wait_until(lambda: store.outbox_size() == 0, timeout=10, message="outbox drained")


@pytest.mark.parametrize("batch", [1, 3])
def test_drain_takes_events_in_the_order_they_were_written(
    router_app: Flask, http: FlaskClient, batch: int
) -> None:
    runtime_of(router_app).relay.stop()
    for n in range(5):
        create_client(http, name=f"client {n}")
    seen: list[bytes] = []
    store = runtime_of(router_app).store
    while store.drain_outbox(lambda t, k, p: seen.append(p), limit=batch)[0]:
        pass
    assert [f'"name":"client {n}"'.encode() in p for n, p in enumerate(seen)] == [True] * 5
