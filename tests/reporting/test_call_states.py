"""The `calls` table keeps no caller for ever: stale states are dropped, erased callers tokenized.

The rule of what is stale is pure (services/reporting/calls.py `stale`). The
rest runs the whole service (`python -m services.reporting`) on call events
made by ingress's and router's builders and router's `caller.erased`, and
watches the table through its changelog topic, where every change lands.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.ingress.webhooks import WEBHOOKS, to_event
from services.reporting.calls import stale, with_caller
from services.reporting.clock import set_file_clock
from services.reporting.config import Config
from services.router.directory import NumberAssignment
from services.router.privacy import caller_erased, erased_key
from services.router.routing import decide, routed_event
from switchboard.kafka import EventProducer, Topics, ensure_topics
from switchboard.privacy import DEV_TOKEN_SECRET, caller_token
from switchboard.settings import ConfigError
from tests.databases import fresh_database
from tests.kafka_read import end_offsets, read_topic, wait_committed_past
from tests.support import ServiceProcess, wait_until
from tests.twilio_calls import ForwardedCall

HOUR = timedelta(hours=1)
MAX_AGE = 24 * HOUR
STARTED = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_a_state_is_stale_once_it_started_longer_ago_than_the_longest_call() -> None:
    state = {"callSid": "CA1", "startedAt": "2026-12-04T09:00:00.000Z", "caller": "+12125550100"}
    assert not stale(state, STARTED, MAX_AGE)
    assert not stale(state, STARTED + MAX_AGE, MAX_AGE)
    assert stale(state, STARTED + MAX_AGE + timedelta(seconds=1), MAX_AGE)
    assert not stale(state, STARTED + 4 * HOUR, MAX_AGE)  # a long call that still goes on


def test_an_erased_callers_state_names_them_by_the_token_and_keeps_the_rest() -> None:
    state = {"callSid": "CA1", "startedAt": "2026-12-04T09:00:00.000Z", "caller": "+12125550100"}
    erased = with_caller(state, "erased:" + "a" * 32)
    assert erased == {**state, "caller": "erased:" + "a" * 32}
    assert state["caller"] == "+12125550100"  # the table's value is never changed in place


@pytest.mark.parametrize(
    ("setting", "variable"),
    [
        ({"call_state_max_hours": 0.0}, "REPORTING_CALL_STATE_MAX_HOURS"),
        ({"call_sweep_seconds": -1.0}, "REPORTING_CALL_SWEEP_SECONDS"),
    ],
)
def test_a_sweep_setting_that_is_not_above_zero_is_refused_by_name(
    setting: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        Config(database_url="postgresql://db/reporting", admin_token="t", **setting)


@dataclass
class Service:
    bootstrap: str
    topics: Topics
    group: str
    clock_file: Path
    producer: EventProducer

    @property
    def changelog(self) -> str:
        return f"{self.group}-calls-changelog"

    @property
    def commands(self) -> str:
        return f"{self.group}-call-commands"

    def states(self) -> dict[str, Any]:
        """The table as its changelog leaves it: the latest value per CallSid (None: dropped)."""
        latest: dict[str, Any] = {}
        for message in read_topic(self.bootstrap, self.changelog, settle=0.5):
            latest[str(message["key"]).strip('"')] = message["value"]
        return latest

    def start_call(self, caller: str, line: int) -> str:
        """A forwarded call's first webhook and routing, as ingress and router publish them;
        its end never comes."""
        number = f"+1510555{line:04d}"
        call = ForwardedCall(to=number, forward_to="+14155559999", caller=caller)
        hook = call.incoming()
        received = to_event(
            WEBHOOKS["voice"], hook.params, f"https://example.test{hook.path}", None
        )
        owner = NumberAssignment(
            number, str(uuid.uuid4()), "+14155559999", False, None, None, datetime.now(UTC)
        )
        routed = routed_event(decide(number, owner), call.call_sid, None)
        for event in (received, routed):
            self.producer.publish(self.topics.call_events, event, call.call_sid, timeout=10)
        return call.call_sid

    def sweep_after_now(self) -> None:
        """Wait until a sweep asked after this moment has been handled on every partition."""
        asked = end_offsets(self.bootstrap, self.commands)
        wait_until(
            lambda: all(
                end > asked.get(p, 0)
                for p, end in end_offsets(self.bootstrap, self.commands).items()
            ),
            timeout=30,
            message="a sweep asked",
        )
        wait_committed_past(
            self.bootstrap, self.group, self.commands, end_offsets(self.bootstrap, self.commands)
        )


@pytest.fixture(scope="module")
def service(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with fresh_database(postgres_url) as db:
        topics = Topics(prefix=f"t{uuid.uuid4().hex[:12]}.")
        ensure_topics(kafka_bootstrap, topics)
        clock_file = tmp_path_factory.mktemp("call-states") / "clock"
        set_file_clock(clock_file, datetime.now(UTC))
        group = f"{topics.prefix}reporting"
        env = {
            "SWITCHBOARD_ENV": "development",
            "ADMIN_API_TOKEN": "test-admin-token",
            "DATABASE_URL": db,
            "REPORTING_DATABASE_URL": db,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": topics.prefix,
            "REPORTING_GROUP_ID": group,
            "REPORTING_CLOCK_FILE": str(clock_file),
            "REPORTING_CALL_SWEEP_SECONDS": "0.5",
            "PRIVACY_TOKEN_SECRET": DEV_TOKEN_SECRET,
        }
        process = ServiceProcess("reporting", env, startup_timeout=60).start()
        producer = EventProducer(kafka_bootstrap)
        try:
            yield Service(kafka_bootstrap, topics, group, clock_file, producer)
        finally:
            producer.close()
            process.stop()


def test_an_erased_callers_open_call_names_the_token_and_a_call_that_never_ends_is_dropped(
    service: Service,
) -> None:
    erased_caller, other_caller = "+12125557001", "+12125557002"
    erased_sid = service.start_call(erased_caller, 7001)
    other_sid = service.start_call(other_caller, 7002)

    def both_open() -> dict[str, Any] | None:
        states = service.states()
        return states if states.get(erased_sid) and states.get(other_sid) else None

    opened = wait_until(both_open, timeout=60, message="both calls' states in the table")
    assert opened[erased_sid]["caller"] == erased_caller

    token = caller_token(DEV_TOKEN_SECRET, erased_caller)
    for version in (
        caller_erased(erased_caller, token, "admin"),
        caller_erased(None, token, "admin"),
    ):
        service.producer.publish(
            service.topics.client_events, version, erased_key(token), timeout=10
        )

    def erased() -> dict[str, Any] | None:
        states = service.states()
        state = states.get(erased_sid)
        return states if state and state["caller"] == token else None

    after = wait_until(erased, timeout=60, message="the erased caller's state tokenized")
    assert after[other_sid]["caller"] == other_caller
    assert erased_caller not in str(after)

    # 23 hours on, the calls could still go on: a sweep keeps them.
    set_file_clock(service.clock_file, datetime.now(UTC) + 23 * HOUR)
    service.sweep_after_now()
    kept = service.states()
    assert kept[erased_sid] is not None and kept[other_sid] is not None

    # Past REPORTING_CALL_STATE_MAX_HOURS (24) their ends will not come: both dropped.
    set_file_clock(service.clock_file, datetime.now(UTC) + 25 * HOUR)

    def dropped() -> bool:
        states = service.states()
        return states.get(erased_sid, 1) is None and states.get(other_sid, 1) is None

    wait_until(dropped, timeout=60, message="the stale states dropped")
