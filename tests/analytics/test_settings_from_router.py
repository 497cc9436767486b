"""Client settings set through router's API reach analytics, through the events router publishes.

A client is created (and changed) through router's management API on real
PostgreSQL; router's outbox relay publishes `client.settings-changed` to the
test's Kafka topics, and a real analytics consumer reads it from there.
Nothing in between is built by the test, so a field router does not send
is a field analytics does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.analytics.privacy import find_text
from services.analytics.store import Store
from services.router.app import create_app as create_router
from services.router.app import runtime_of
from switchboard.events import Event
from switchboard.kafka import Topics
from tests.analytics import call_scripts as script
from tests.analytics.conftest import AUTH, ConsumerFactory
from tests.router.actions import AUTH as ROUTER_AUTH
from tests.router.actions import assign_number, create_client, make_config
from tests.support import wait_until

Publish = Callable[[list[Event]], None]
THRESHOLDS = {"shortSec": 10, "longSec": 60, "qualifiedSec": 50}


@pytest.fixture
def router(pg_url: str, kafka_bootstrap: str, topics: Topics) -> Iterator[FlaskClient]:
    app = create_router(make_config(pg_url, kafka_bootstrap, topics))
    yield app.test_client()
    runtime_of(app).close()


def settings_arrived(store: Store, client_id: str, check: Callable[[Any], bool]) -> None:
    def arrived() -> bool:
        settings = store.client_settings(client_id).get(client_id)
        return settings is not None and check(settings)

    wait_until(arrived)


def answered_calls(client_id: str, talks: list[int]) -> list[Event]:
    base = datetime.now(UTC) - timedelta(hours=1)
    calls: list[Event] = []
    for n, talk in enumerate(talks):
        sid = f"CA{client_id[:8]}{n:04d}"
        calls += script.answered_call(sid, base + timedelta(minutes=n), client_id, talk=talk)
    return calls


def test_conversion_without_a_value_takes_the_value_per_conversion_set_in_router(
    router: FlaskClient,
    store: Store,
    publish: Publish,
    start_consumer: ConsumerFactory,
    make_app: Callable[..., Flask],
) -> None:
    client = create_client(router, name="Acme", forwardTo="+14155559999", valuePerConversion=75)
    client_id = client["id"]
    assign_number(router, client_id, phoneNumber=script.TWILIO_NUMBER, campaign="google")
    call = answered_calls(client_id, [45])
    publish(call)
    start_consumer(store)
    settings_arrived(store, client_id, lambda s: s.valuePerConversion == 75.0)
    wait_until(lambda: store.get_call(call[0].callSid or ""))

    analytics = make_app().test_client()
    response = analytics.post(
        "/api/analytics/conversions", json={"callSid": call[0].callSid}, headers=AUTH
    )

    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["value"], response.get_json()["clientId"]) == (75.0, client_id)


def test_lead_thresholds_set_in_router_classify_the_clients_calls_in_analytics(
    router: FlaskClient,
    store: Store,
    publish: Publish,
    start_consumer: ConsumerFactory,
    make_app: Callable[..., Flask],
) -> None:
    client = create_client(router, name="Acme", forwardTo="+14155559999", leadThresholds=THRESHOLDS)
    client_id = client["id"]
    calls = answered_calls(client_id, [5, 30, 55, 90])
    publish(calls)
    start_consumer(store)
    settings_arrived(store, client_id, lambda s: s.leadLongSec == 60)
    wait_until(lambda: len(store.load_facts({e.callSid or "" for e in calls})) == 4)
    analytics = make_app().test_client()

    def lead_quality() -> dict[str, Any]:
        response = analytics.get(
            "/api/analytics/lead-quality", query_string={"clientId": client_id}, headers=AUTH
        )
        assert response.status_code == 200, response.get_json()
        found: dict[str, Any] = response.get_json()
        return found

    lead = lead_quality()
    assert lead["thresholds"] == THRESHOLDS
    assert [b["calls"] for b in lead["buckets"]] == [1, 2, 1]
    assert lead["qualifiedLeads"] == 2

    # A change in router reaches analytics the same way.
    changed = {"shortSec": 40, "longSec": 100, "qualifiedSec": 0}
    response = router.patch(
        f"/api/clients/{client_id}", json={"leadThresholds": changed}, headers=AUTH
    )
    assert response.status_code == 200, response.get_json()
    settings_arrived(store, client_id, lambda s: s.leadLongSec == 100)
    lead = lead_quality()
    assert lead["thresholds"] == changed
    assert [b["calls"] for b in lead["buckets"]] == [2, 2, 0]
    assert lead["qualifiedLeads"] == 4


def test_a_webhook_signing_secret_never_reaches_clickhouse(
    router: FlaskClient, store: Store, start_consumer: ConsumerFactory
) -> None:
    # client.settings-changed carries the secret for reporting; Grafana's user reads the events.
    client_id = create_client(router, name="Acme", forwardTo="+14155559999")["id"]
    hook = "https://93.184.215.14/hooks/calls"
    response = router.put(
        f"/api/clients/{client_id}/notifications",
        json={"missedCall": {"webhook": {"url": hook}}},
        headers=ROUTER_AUTH,
    )
    assert response.status_code == 200, response.get_json()
    secret = response.get_json()["missedCall"]["webhook"]["secret"]
    start_consumer(store)

    wait_until(lambda: find_text(store, hook).get("events", 0) > 0, message="settings stored")
    assert sum(find_text(store, secret).values()) == 0
