"""The call flow as published, read back by the kernel, and the routing decision (pure).

Router validates a flow and publishes its JSON on `number.assigned`; ingress
reads it with `Flow.read`. Both must route a call the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.router.dialing import DialPolicy
from services.router.directory import NumberAssignment
from services.router.flows import Flow as RouterFlow
from switchboard.callflow import DAYS, Flow, UnreadableFlow, decide, routed_event
from switchboard.events import validate
from tests.router.test_flows import FULL, POLICY

NUMBER = "+14155550100"


def test_a_published_flow_reads_back_as_router_validated_it() -> None:
    validated = RouterFlow.parse(FULL, NUMBER, POLICY)
    read = Flow.read(validated.to_json())
    assert read.to_json() == validated.to_json()
    assert read.ring is not None and [t.timeout_sec for t in read.ring.targets] == [15, 20]
    assert Flow.read(RouterFlow.parse({}, NUMBER, DialPolicy()).to_json()).is_empty


@pytest.mark.parametrize(
    "published",
    [
        {"ring": {"targets": []}},
        {"ring": {"strategy": "round-robin", "targets": [{"number": "+14155550101"}]}},
        {"afterHours": "hang-up"},
        {"businessHours": {"weekly": {"mon": [["nine", "17:00"]]}}},
        {"textBack": {"cooldownHours": 1}},
    ],
)
def test_a_flow_of_another_shape_is_unreadable(published: dict[str, Any]) -> None:
    with pytest.raises(UnreadableFlow):
        Flow.read(published)


def assignment(flow: Flow | None, timezone: str) -> NumberAssignment:
    return NumberAssignment(
        NUMBER, "c1", "+14155559999", True, "Recorded.", "mailer", datetime.now(UTC), timezone, flow
    )


def test_business_hours_are_judged_at_the_moment_given_in_the_clients_zone() -> None:
    weekdays = Flow.read({"businessHours": {"weekly": {d: [["09:00", "17:00"]] for d in DAYS[:5]}}})
    # Monday 2026-12-07 at 16:30 UTC is 08:30 in Los Angeles and 11:30 in New York.
    moment = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
    assert not decide(NUMBER, assignment(weekdays, "America/Los_Angeles"), moment).in_hours
    assert decide(NUMBER, assignment(weekdays, "America/New_York"), moment).in_hours


def test_the_routed_event_names_its_producer_and_is_the_same_fact_from_either() -> None:
    decision = decide(NUMBER, assignment(None, "UTC"), datetime.now(UTC))
    by_router = routed_event(decision, "CA" + "1" * 32, None, "router")
    by_ingress = routed_event(decision, "CA" + "1" * 32, "req", "ingress")
    validate(by_ingress.to_dict())
    assert (by_router.id, by_router.data) == (by_ingress.id, by_ingress.data)
    assert (by_router.source, by_ingress.source) == ("router", "ingress")
