"""What router tests do to the router: its config, API calls and routed calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from services.router.config import Config
from switchboard.kafka import Topics
from tests.support import wait_until
from tests.twilio_sim.simulator import Simulator

ADMIN_TOKEN = "test-admin-token"
BASE = "https://calls.example.com"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# make_app(**config_overrides) -> a router app on the test's database and topics
AppFactory = Callable[..., Flask]


@dataclass(frozen=True)
class LiveRouter:
    """A router app served over HTTP at `url` (its public base URL), with the simulator."""

    app: Flask
    url: str
    simulator: Simulator


def make_config(pg_url: str, kafka_bootstrap: str, topics: Topics, **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "database_url": pg_url,
        "admin_token": ADMIN_TOKEN,
        "kafka_bootstrap": kafka_bootstrap,
        "topics": topics,
        "public_base_url": BASE,
        "dial_timeout_seconds": 25,
        "publish_timeout_seconds": 2.0,
        # Long enough that only NOTIFY can explain a prompt refresh in a test.
        "refresh_interval_seconds": 300.0,
        "outbox_interval_seconds": 0.5,
    }
    settings.update(overrides)
    return Config(**settings)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_client(http: FlaskClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Acme Plumbing")
    response = http.post("/api/clients", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def assign_number(http: FlaskClient, client_id: str, **body: Any) -> dict[str, Any]:
    response = http.post(f"/api/clients/{client_id}/numbers", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    assigned: dict[str, Any] = response.get_json()
    return assigned


def issue_key(http: FlaskClient, client_id: str, name: str | None = None) -> dict[str, Any]:
    body = {} if name is None else {"name": name}
    response = http.post(f"/api/clients/{client_id}/api-keys", json=body, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    issued: dict[str, Any] = response.get_json()
    return issued


def audit_entries(http: FlaskClient, **filters: Any) -> list[dict[str, Any]]:
    response = http.get("/api/audit", query_string=filters, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    entries: list[dict[str, Any]] = response.get_json()["entries"]
    return entries


def route(http: FlaskClient, call_sid: str, to: str, request_id: str | None = None) -> Any:
    headers = {"X-Request-Id": request_id} if request_id else {}
    params = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": "+14155550123",
        "To": to,
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    return http.post("/internal/route", data=params, headers=headers)


def held_number(http: FlaskClient, phone_number: str) -> dict[str, Any] | None:
    """The number as GET /api/twilio/numbers shows it, or None if not held."""
    response = http.get("/api/twilio/numbers", headers=AUTH)
    assert response.status_code == 200, response.get_json()
    found = [n for n in response.get_json()["numbers"] if n["phoneNumber"] == phone_number]
    return found[0] if found else None


def wait_synced(http: FlaskClient, phone_number: str, timeout: float = 20.0) -> dict[str, Any]:
    """The held number once Twilio has its current configuration."""

    def synced() -> dict[str, Any] | None:
        number = held_number(http, phone_number)
        return number if number and number["twilioSync"]["status"] == "synced" else None

    return wait_until(synced, timeout=timeout, message=f"{phone_number} synced at Twilio")
