"""Router test fixtures: apps over this test's fresh database and real Kafka topics.

`make_app` builds router apps (config overrides as keywords); `twilio_app`
is one that talks to the Twilio simulator (a real process, one per session,
reached through the twilio library); `live_router` serves such an app over
HTTP on its public base URL, so the simulator can fetch TwiML from it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from services.router.app import create_app, runtime_of
from switchboard.kafka import Topics
from tests.router.actions import AppFactory, LiveRouter, make_config
from tests.support import free_port
from tests.twilio_sim.simulator import Simulator, running_simulator


@pytest.fixture
def make_app(pg_url: str, kafka_bootstrap: str, topics: Topics) -> Iterator[AppFactory]:
    """Builds router apps on this test's database and topics; closes them afterwards."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        config = replace(make_config(pg_url, kafka_bootstrap, topics), **overrides)
        app = create_app(config)
        built.append(app)
        return app

    yield build
    for app in built:
        runtime_of(app).close()


@pytest.fixture
def router_app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def http(router_app: Flask) -> FlaskClient:
    return router_app.test_client()


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    """The Twilio simulator, as a process of its own, for the whole session."""
    with running_simulator() as sim:
        yield sim


def twilio_settings(simulator: Simulator) -> dict[str, Any]:
    return {
        "twilio_account_sid": simulator.account_sid,
        "twilio_auth_token": simulator.auth_token,
        "twilio_api_base_url": simulator.base_url,
    }


@pytest.fixture
def twilio_app(make_app: AppFactory, simulator: Simulator) -> Flask:
    """A router whose Twilio is the simulator."""
    return make_app(**twilio_settings(simulator))


@pytest.fixture
def twilio_http(twilio_app: Flask) -> FlaskClient:
    return twilio_app.test_client()


@pytest.fixture
def live_router(make_app: AppFactory, simulator: Simulator) -> Iterator[LiveRouter]:
    """A Twilio-enabled router served over HTTP at its own public base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = make_app(public_base_url=base, **twilio_settings(simulator))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-router", daemon=True)
    thread.start()
    try:
        yield LiveRouter(app, base, simulator)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
