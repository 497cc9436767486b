"""A whole Switchboard per fault scenario, on Kafka and PostgreSQL it may break.

A scenario that kills the broker or stops the database gets one of its own
(devstack, through devstack.stack.Stack), so the session's shared
broker and cluster stay healthy for every other test; the rest run on the
session's, with a fresh topic prefix and database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.faults import Scenario
from devstack.stack import Stack

StackFor = Callable[[Scenario], Stack]


@pytest.fixture
def stack_for(kafka_bootstrap: str, postgres_url: str, tmp_path: Path) -> Iterator[StackFor]:
    started: list[Stack] = []

    def build(scenario: Scenario) -> Stack:
        stack = Stack(
            tmp_path / scenario.name,
            kafka_bootstrap=None if scenario.kills_kafka else kafka_bootstrap,
            postgres_url=None if scenario.kills_postgres else postgres_url,
        )
        started.append(stack)
        return stack.start()

    yield build
    for stack in started:
        stack.close()
