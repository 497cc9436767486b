"""Liveness and readiness: /healthz always answers, /readyz names what is missing."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from tests.router.actions import AppFactory
from tests.support import free_port


def test_healthz_answers_200(http: FlaskClient) -> None:
    assert http.get("/healthz").status_code == 200


def test_readyz_is_200_with_postgres_and_kafka_reachable(http: FlaskClient) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"] == {"postgres": "ok", "kafka": "ok", "routingTable": "ok"}
    assert body["twilioSyncPending"] == 0


def test_readyz_is_503_naming_kafka_when_the_broker_is_unreachable(
    make_app: AppFactory,
) -> None:
    http = make_app(kafka_bootstrap=f"127.0.0.1:{free_port()}").test_client()
    response = http.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["kafka"] != "ok"
    assert "kafka" in body["error"]["message"]
    assert http.get("/healthz").status_code == 200


def test_readyz_is_503_naming_postgres_when_the_database_is_gone(
    router_app: Flask, http: FlaskClient
) -> None:
    runtime_of(router_app).store.close()
    response = http.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["postgres"] != "ok"
    assert "postgres" in response.get_json()["error"]["message"]
