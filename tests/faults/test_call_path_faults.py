"""Parts of the call path die while simulated calls flow: no call is lost or counted twice.

Each scenario plays a few dozen calls through the Twilio simulator (signed,
realistic lifecycles) around one fault, then compares what analytics shows
with what was played. The assertion messages carry the scenario's figures:
calls sent, counted, duplicated, counted wrong, and what it observed.
"""

from __future__ import annotations

import pytest

from bench.faults import SCENARIOS, Outcome, Plan
from devstack.stack import quiet
from tests.faults.conftest import StackFor

pytestmark = pytest.mark.e2e

SHORT = Plan(calls=30, rate=6.0, outage=2.0, numbers=3, settle_seconds=90.0)


def run(name: str, stack_for: StackFor) -> tuple[Outcome, str]:
    scenario = SCENARIOS[name]
    stack = stack_for(scenario)
    return scenario.run(stack, SHORT, quiet), f"(logs: {stack.logs})"


def assert_nothing_lost_or_doubled(outcome: Outcome, logs: str) -> None:
    report = f"{outcome} {logs}"
    assert outcome.count.failed_webhooks == 0, report
    assert outcome.count.counted == outcome.count.sent, report
    assert outcome.count.duplicated == 0, report
    assert outcome.count.wrong == 0, report


def test_kafka_broker_killed_mid_run_ingress_spools_and_every_call_counts_once(
    stack_for: StackFor,
) -> None:
    outcome, logs = run("kafka", stack_for)
    assert_nothing_lost_or_doubled(outcome, logs)
    assert not outcome.failed_checks, f"{outcome} {logs}"


def test_kafka_down_longer_than_producers_keep_messages_loses_no_routing_decision(
    stack_for: StackFor,
) -> None:
    outcome, logs = run("kafka-long", stack_for)
    assert_nothing_lost_or_doubled(outcome, logs)
    assert not outcome.failed_checks, f"{outcome} {logs}"


def test_analytics_consumer_killed_mid_batch_loses_and_doubles_nothing(
    stack_for: StackFor,
) -> None:
    outcome, logs = run("analytics", stack_for)
    assert_nothing_lost_or_doubled(outcome, logs)
    assert not outcome.failed_checks, f"{outcome} {logs}"


def test_router_stopped_callers_are_forwarded_from_ingress_copy_and_their_calls_count(
    stack_for: StackFor,
) -> None:
    outcome, logs = run("router", stack_for)
    assert_nothing_lost_or_doubled(outcome, logs)
    assert not outcome.failed_checks, f"{outcome} {logs}"


def test_postgres_stopped_routing_goes_on_and_management_api_answers_503_with_a_reason(
    stack_for: StackFor,
) -> None:
    outcome, logs = run("postgres", stack_for)
    assert_nothing_lost_or_doubled(outcome, logs)
    assert not outcome.failed_checks, f"{outcome} {logs}"
