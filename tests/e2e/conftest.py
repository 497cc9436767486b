"""The whole spine as separate processes behind the nginx edge, as `make run` runs it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.rest import Client

from devstack.nginx import UPSTREAMS, Edge, start_nginx
from devstack.stack import Service, Stack
from services.twilio_sim.redirect import SimulatorHttpClient
from switchboard.kafka import Topics
from tests.kafka_read import wait_committed_past
from tests.support import free_port, wait_until
from tests.twilio_calls import Webhook, sign

ADMIN = "e2e-admin-token"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "e2e-twilio-auth-token"


@dataclass
class System:
    edge: Edge
    services: dict[str, Service]
    topics: Topics
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.edge.url

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    def analytics_caught_up(self) -> None:
        """Wait until analytics has committed past every call event sent so far."""
        wait_committed_past(self.bootstrap, self.env["ANALYTICS_GROUP_ID"], self.topics.call_events)

    @property
    def simulator(self) -> str:
        return self.services["twilio_sim"].url

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def twilio(self, hook: Webhook, signature: str | None = None) -> requests.Response:
        """POST a webhook to the edge the way Twilio does: form-encoded and signed."""
        if signature is None:
            signature = sign(AUTH_TOKEN, self.url + hook.path, hook.params)
        return requests.post(
            self.url + hook.path,
            data=hook.params,
            timeout=10,
            headers={"X-Twilio-Signature": signature},
        )

    def new_client(self, forward_to: str) -> str:
        reply = self.admin(
            "POST",
            "/api/clients",
            json={"name": f"client {uuid.uuid4().hex[:6]}", "forwardTo": forward_to},
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def assign(self, client_id: str, number: str, **body: Any) -> None:
        reply = self.admin(
            "POST",
            f"/api/clients/{client_id}/numbers",
            json={
                "phoneNumber": number,
                "record": True,
                "recordingDisclaimer": "This call may be recorded.",
                **body,
            },
        )
        assert reply.status_code == 201, reply.text

    def own_at_simulator(self, phone: str) -> None:
        """The account owns `phone` at the simulator, its calls sent to this system's edge."""
        owned = requests.post(
            f"{self.simulator}/sim/numbers",
            json={
                "phoneNumber": phone,
                "voiceUrl": f"{self.url}/api/twilio/webhook",
                "statusCallback": f"{self.url}/api/twilio/status",
            },
            timeout=10,
        )
        assert owned.status_code in (200, 201), owned.text

    def call(self, call_sid: str, timeout: float = 5.0) -> dict[str, Any]:
        def fetch() -> dict[str, Any] | None:
            reply = self.admin("GET", f"/api/calls/{call_sid}")
            return reply.json() if reply.status_code == 200 else None

        return wait_until(fetch, timeout=timeout, message=f"call {call_sid} in analytics")

    def summary(self, client_id: str) -> dict[str, Any]:
        reply = self.admin("GET", "/api/analytics/summary", params={"clientId": client_id})
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def twilio_rest(self) -> Client:
        """twilio-python's Client, talking to this system's Twilio (the simulator)."""
        return Client(ACCOUNT_SID, AUTH_TOKEN, http_client=SimulatorHttpClient(self.simulator))

    def as_key(self, key: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the edge with a client API key."""
        headers = {"Authorization": f"Bearer {key}"}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def issue_key(self, client_id: str) -> str:
        reply = self.admin("POST", f"/api/clients/{client_id}/api-keys", json={})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["key"])

    def play(self, timeout: float = 30.0, **call: Any) -> dict[str, Any]:
        """Play one inbound call with the simulator (POST /sim/calls); its log once finished."""
        reply = requests.post(f"{self.simulator}/sim/calls", json=call, timeout=10)
        assert reply.status_code == 202, reply.text
        return self.played(reply.json()["callSid"], timeout)

    def played(self, call_sid: str, timeout: float = 30.0) -> dict[str, Any]:
        """The simulator's log of a call once it has finished."""

        def finished() -> dict[str, Any] | None:
            reply = requests.get(
                f"{self.simulator}/sim/calls/{call_sid}", params={"wait": 5}, timeout=15
            )
            log: dict[str, Any] = reply.json()
            return log if log.get("state") == "finished" else None

        return wait_until(finished, timeout=timeout, message=f"simulated call {call_sid}")

    @contextmanager
    def edge_down(self) -> Iterator[None]:
        """The public edge stopped (the whole deployment unreachable), then started again."""
        listen = self.edge.url.removeprefix("http://")
        prefix = self.edge.prefix
        self.edge.stop()
        try:
            yield
        finally:
            running = {name: f"127.0.0.1:{service.port}" for name, service in self.services.items()}
            # A service this system does not run gets a port nobody listens on (503).
            nobody = f"127.0.0.1:{free_port()}"
            upstreams = {name: running.get(name, nobody) for name in UPSTREAMS}
            self.edge = start_nginx(prefix, listen, upstreams)


SERVICES = ("twilio_sim", "router", "analytics", "recordings", "ingress")


@contextmanager
def running_system(
    folder: Path,
    kafka_bootstrap: str,
    postgres_url: str,
    services: tuple[str, ...] = SERVICES,
    env: dict[str, str] | None = None,
) -> Iterator[System]:
    """The services behind the edge on the tests' Kafka and PostgreSQL, as a System."""
    stack = Stack(
        folder,
        kafka_bootstrap=kafka_bootstrap,
        postgres_url=postgres_url,
        services=services,
        env={
            "ADMIN_API_TOKEN": ADMIN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            # A deleted client's data is purged at once (tests/e2e/test_privacy.py).
            "ROUTER_CLIENT_PURGE_GRACE_DAYS": "0",
            # The group the tests wait on to show that nothing else happened.
            "ANALYTICS_GROUP_ID": "analytics",
            **(env or {}),
        },
    )
    with stack:
        assert stack.edge is not None
        system = System(stack.edge, stack.services, stack.topics, stack.env)
        yield system
        # A test may have stopped the edge and started another (System.edge_down).
        stack.edge = system.edge


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("e2e"), kafka_bootstrap, postgres_url) as made:
        yield made


def number() -> str:
    """A fresh US number for one test."""
    return "+1415" + str(uuid.uuid4().int)[:7]


def dial_of(twiml: str) -> Any:
    import xml.etree.ElementTree as ET

    return ET.fromstring(twiml).find("Dial")


__all__ = ["System", "number", "dial_of", "Path"]
