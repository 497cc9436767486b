"""Router test fixtures: apps over this test's fresh database and real Kafka topics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import create_app, runtime_of
from switchboard.kafka import Topics
from tests.router.actions import AppFactory, make_config


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
