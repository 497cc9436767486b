"""Fixtures for the simulator tests: one simulator process per session, a receiver per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.twilio_sim.receiver import WebhookReceiver
from tests.twilio_sim.simulator import Simulator, running_simulator

_lines = itertools.count(2000)


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def receiver(simulator: Simulator) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(simulator.auth_token) as server:
        yield server


@pytest.fixture
def tracking_number() -> str:
    """A number no other test in this session uses (Oakland, 555-2000 onwards)."""
    return f"+1510555{next(_lines):04d}"
