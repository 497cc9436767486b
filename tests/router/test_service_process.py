"""The router as `make run` starts it: gunicorn, two worker processes, real infra."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from switchboard.kafka import Topics
from tests.router.actions import ADMIN_TOKEN, AUTH, BASE
from tests.support import ServiceProcess

NUMBER = "+14155550100"
CLIENT_PHONE = "+14155559999"


@pytest.fixture
def router(pg_url: str, kafka_bootstrap: str, topics: Topics) -> Iterator[ServiceProcess]:
    env = {
        "DATABASE_URL": pg_url,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topics.prefix,
        "PUBLIC_BASE_URL": BASE,
    }
    with ServiceProcess("router", env) as process:
        yield process


def routes_to_client(url: str, attempts: int = 20) -> bool:
    """True if every one of `attempts` calls (over the worker's threads) dials the client."""
    for attempt in range(attempts):
        answer = requests.post(
            f"{url}/internal/route",
            data={"CallSid": f"CA{attempt:032d}", "To": NUMBER, "From": "+14155550123"},
            timeout=5,
        )
        if answer.status_code != 200 or f">{CLIENT_PHONE}</Number>" not in answer.text:
            return False
    return True


def test_the_call_right_after_an_assignment_is_routed_to_the_client(
    router: ServiceProcess,
) -> None:
    assert requests.get(f"{router.url}/readyz", timeout=10).status_code == 200
    created = requests.post(
        f"{router.url}/api/clients",
        json={"name": "Acme", "forwardTo": CLIENT_PHONE},
        headers=AUTH,
        timeout=10,
    )
    assert created.status_code == 201
    assigned = requests.post(
        f"{router.url}/api/clients/{created.json()['id']}/numbers",
        json={"phoneNumber": NUMBER},
        headers=AUTH,
        timeout=10,
    )
    assert assigned.status_code == 201

    assert routes_to_client(router.url)
    assert router.stop() == 0
