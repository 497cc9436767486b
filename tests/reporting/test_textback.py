"""The missed-call text-back against real PostgreSQL, Kafka and the Twilio simulator.

Each test owns a tracking number at the simulator and gives it a flow with a
text-back through router's own `number.assigned`. Most tests hand missed
calls, as reporting's own `alert.missed-call` carries them (with the
text-back of the flow the call was routed with), to `TextBacks` with an
injected clock, so the cooldown is crossed without waiting; the last ones
run the whole service (`python -m services.reporting`, one process for the
module) on call events made by ingress's and router's builders.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg_pool import ConnectionPool

from services.ingress.webhooks import WEBHOOKS, to_event
from services.reporting.alerts import MissedCall, TextBackSetting, alerts_topic, missed_call_alert
from services.reporting.clock import set_file_clock
from services.reporting.sms import SmsSender
from services.reporting.textback import TextBacks, decode_alert
from services.reporting.textback_config import TextBackConfig
from services.reporting.textback_store import TextBackStore
from services.router.directory import NumberAssignment
from services.router.facts import number_assigned, number_released
from services.router.flows import Flow, TextBack
from services.router.privacy import caller_erased
from services.router.routing import decide, routed_event
from switchboard.events import Event, decode
from switchboard.kafka import EventProducer, PublishError, Topics, ensure_topics
from switchboard.privacy import DEV_TOKEN_SECRET, caller_token
from tests.kafka_read import read_topic, wait_committed_past
from tests.support import ServiceProcess, free_port, wait_until
from tests.twilio_calls import ForwardedCall, Webhook
from tests.twilio_sim.simulator import Simulator, running_simulator

MESSAGE = "Sorry we missed your call. We will ring you back shortly."
START = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
DAILY = TextBack(MESSAGE, 24)
_lines = itertools.count(3000)
_callers = itertools.count(100)


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def module_topics(kafka_bootstrap: str) -> Topics:
    fresh = Topics(prefix=f"t{uuid.uuid4().hex[:12]}.")
    ensure_topics(kafka_bootstrap, fresh)
    return fresh


@pytest.fixture(scope="module")
def producer(kafka_bootstrap: str) -> Iterator[EventProducer]:
    made = EventProducer(kafka_bootstrap)
    yield made
    made.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Harness:
    text_backs: TextBacks
    store: TextBackStore
    clock: Clock
    simulator: Simulator
    number: str
    client_id: str
    # The text-back calls are routed with now (the assigned flow's).
    routed_with: TextBackSetting | None = None

    def assign(self, text_back: TextBack | None = DAILY) -> None:
        """Router publishes the number with a flow that has (or lacks) a text-back."""
        self.routed_with = (
            TextBackSetting(text_back.message, text_back.cooldown_hours) if text_back else None
        )
        assignment = NumberAssignment(
            phone_number=self.number,
            client_id=self.client_id,
            forward_to="+14155559999",
            record=False,
            recording_disclaimer=None,
            campaign="spring",
            assigned_at=self.clock.now - timedelta(days=1),
            flow=Flow(text_back=text_back) if text_back else None,
        )
        self.text_backs.handle_number_event(wire(number_assigned(assignment)))

    def release(self) -> None:
        self.routed_with = None
        assignment = NumberAssignment(
            self.number, self.client_id, "+14155559999", False, None, None, START
        )
        self.text_backs.handle_number_event(
            wire(number_released(assignment, self.clock.now - timedelta(seconds=1)))
        )

    def missed(self, caller: str, outcome: str = "no-answer", carried: bool = True) -> MissedCall:
        """A missed call from `caller` that just ended, as its alert carries it.

        `carried` False: an alert from before alerts carried the text-back.
        """
        call = MissedCall(
            call_sid="CA" + uuid.uuid4().hex,
            client_id=self.client_id,
            called_number=self.number,
            caller_number=caller,
            outcome=outcome,
            called_at=self.clock.now - timedelta(minutes=1),
            text_back=self.routed_with,
        )
        event = missed_call_alert(call)
        if not carried:
            event.data.pop("textBack")
        alert = decode_alert(event.to_json())
        assert alert is not None and alert.carries_text_back == carried
        return alert

    def texts_to(self, caller: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.simulator.messages(to=caller)
            if m["from"] == self.number and m["direction"] == "outbound-api"
        ]


def wire(event: Event) -> Event:
    """The event as a consumer reads it off Kafka."""
    return decode(event.to_json())


def sender(simulator: Simulator) -> SmsSender:
    return SmsSender(simulator.account_sid, simulator.auth_token, simulator.base_url)


def broker_down(event: Event) -> None:
    raise PublishError("no acknowledgement from Kafka")


def new_caller() -> str:
    return f"+1415555{next(_callers):04d}"


@pytest.fixture
def harness(
    simulator: Simulator,
    reporting_db: str,
    module_topics: Topics,
    producer: EventProducer,
) -> Iterator[Harness]:
    number = f"+1510555{next(_lines):04d}"
    simulator.own_number(number, "http://127.0.0.1:9/voice")
    config = TextBackConfig(retry_seconds=0.0)
    clock = Clock(START)
    with ConnectionPool(
        reporting_db, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
    ) as pool:
        store = TextBackStore(pool)
        text_backs = TextBacks(
            store,
            sender(simulator),
            lambda event: producer.publish(
                module_topics.call_events, event, event.callSid, timeout=10
            ),
            config,
            clock=clock,
        )
        yield Harness(text_backs, store, clock, simulator, number, f"client-{uuid.uuid4().hex[:8]}")


def sms_sent_on_kafka(bootstrap: str, topics: Topics, call_sid: str) -> list[dict[str, Any]]:
    return [
        m["value"]
        for m in read_topic(bootstrap, topics.call_events, settle=0.5)
        if m["key"] == call_sid and m["value"]["type"] == "sms.sent"
    ]


def test_a_missed_call_texts_the_caller_once_and_announces_sms_sent(
    harness: Harness, kafka_bootstrap: str, module_topics: Topics
) -> None:
    harness.assign()
    caller = new_caller()
    call = harness.missed(caller)

    assert harness.text_backs.handle(call) == "sent"
    [text] = harness.texts_to(caller)
    assert text["body"] == MESSAGE

    # A redelivered alert (same CallSid) sends nothing.
    assert harness.text_backs.handle(call) == "duplicate"
    assert len(harness.texts_to(caller)) == 1

    [event] = sms_sent_on_kafka(kafka_bootstrap, module_topics, call.call_sid)
    assert event["data"]["messageSid"] == text["sid"]
    assert (event["data"]["to"], event["data"]["from"]) == (caller, harness.number)
    assert event["clientId"] == harness.client_id
    record = harness.store.call(call.call_sid)
    assert record is not None and record.status == "sent" and record.published


def test_a_caller_is_not_texted_again_within_the_cooldown_but_is_after_it(
    harness: Harness,
) -> None:
    harness.assign(TextBack(MESSAGE, 24))
    caller = new_caller()
    assert harness.text_backs.handle(harness.missed(caller)) == "sent"

    harness.clock.advance(hours=23, minutes=59)
    assert harness.text_backs.handle(harness.missed(caller, "voicemail")) == "cooldown"
    assert len(harness.texts_to(caller)) == 1

    harness.clock.advance(minutes=1)
    assert harness.text_backs.handle(harness.missed(caller, "busy")) == "sent"
    assert len(harness.texts_to(caller)) == 2


def test_the_cooldown_is_per_number(harness: Harness, simulator: Simulator) -> None:
    harness.assign()
    caller = new_caller()
    assert harness.text_backs.handle(harness.missed(caller)) == "sent"
    other = replace(harness, number=f"+1510555{next(_lines):04d}")
    simulator.own_number(other.number, "http://127.0.0.1:9/voice")
    other.assign()
    assert other.text_backs.handle(other.missed(caller)) == "sent"
    assert len(other.texts_to(caller)) == 1


def test_a_caller_who_replied_stop_is_never_texted_again(harness: Harness) -> None:
    harness.assign(TextBack(MESSAGE, 1))
    caller = new_caller()
    harness.simulator.text_from(caller, harness.number, "STOP")

    # Twilio refuses with 21610; the opt-out is recorded.
    assert harness.text_backs.handle(harness.missed(caller)) == "opted-out"
    assert harness.store.opted_out(harness.number, caller)
    assert harness.texts_to(caller) == []

    # Opted back in at Twilio, but the recorded opt-out holds: Twilio is not even
    # asked (if it were, this text would go through).
    harness.simulator.text_from(caller, harness.number, "START")
    harness.clock.advance(days=3)
    assert harness.text_backs.handle(harness.missed(caller)) == "opted-out"
    assert harness.texts_to(caller) == []


def test_a_stop_to_one_number_does_not_silence_another(harness: Harness) -> None:
    harness.assign()
    caller = new_caller()
    harness.simulator.text_from(caller, harness.number, "STOP")
    assert harness.text_backs.handle(harness.missed(caller)) == "opted-out"
    other = replace(harness, number=f"+1510555{next(_lines):04d}")
    harness.simulator.own_number(other.number, "http://127.0.0.1:9/voice")
    other.assign()
    assert other.text_backs.handle(other.missed(caller)) == "sent"


@pytest.mark.parametrize(
    ("caller", "reason"),
    [("anonymous", "withheld"), ("+266696687", "withheld"), ("+442071838750", "not-mobile")],
)
def test_withheld_and_landline_callers_get_no_text(
    harness: Harness, caller: str, reason: str
) -> None:
    harness.assign()
    call = harness.missed(caller)
    assert harness.text_backs.handle(call) == reason
    assert harness.texts_to(caller) == []
    record = harness.store.call(call.call_sid)
    assert record is not None and (record.status, record.reason) == ("skipped", reason)


def test_the_text_back_is_the_one_the_call_was_routed_with_whatever_the_ledger_holds(
    harness: Harness,
) -> None:
    # The number events are behind: the ledger has not seen the number at all.
    harness.routed_with = TextBackSetting(MESSAGE, 24)
    caller = new_caller()
    assert harness.text_backs.handle(harness.missed(caller)) == "sent"
    # The ledger has a text-back, but the call was routed with a flow without one.
    harness.assign()
    harness.routed_with = None
    assert harness.text_backs.handle(harness.missed(new_caller())) == "no-text-back"
    assert len(harness.texts_to(caller)) == 1


def test_a_flow_without_text_back_texts_nobody(harness: Harness) -> None:
    harness.assign(None)
    caller = new_caller()
    assert harness.text_backs.handle(harness.missed(caller)) == "no-text-back"
    assert harness.texts_to(caller) == []


def test_an_alert_that_carries_no_text_back_is_weighed_by_the_numbers_latest_event(
    harness: Harness,
) -> None:
    harness.assign()
    caller = new_caller()
    assert harness.text_backs.handle(harness.missed(caller, carried=False)) == "sent"
    harness.release()
    harness.clock.advance(days=2)
    assert harness.text_backs.handle(harness.missed(caller, carried=False)) == "no-text-back"
    assert len(harness.texts_to(caller)) == 1


def test_an_older_number_event_does_not_undo_a_newer_one(harness: Harness) -> None:
    harness.assign(TextBack("newer", 24))
    assignment = NumberAssignment(
        harness.number, harness.client_id, "+14155559999", False, None, None, START
    )
    stale = replace(wire(number_released(assignment, START)), occurredAt="2020-01-01T00:00:00.000Z")
    harness.text_backs.handle_number_event(wire(stale))
    caller = new_caller()
    assert harness.text_backs.handle(harness.missed(caller, carried=False)) == "sent"
    assert [m["body"] for m in harness.texts_to(caller)] == ["newer"]


def test_an_erased_caller_is_forgotten_but_their_stop_and_cooldown_still_hold(
    harness: Harness, reporting_db: str
) -> None:
    harness.assign(TextBack(MESSAGE, 24))
    stopped, texted = new_caller(), new_caller()
    harness.simulator.text_from(stopped, harness.number, "STOP")
    assert harness.text_backs.handle(harness.missed(stopped)) == "opted-out"
    assert harness.text_backs.handle(harness.missed(texted)) == "sent"

    for caller in (stopped, texted):
        token = caller_token(DEV_TOKEN_SECRET, caller)
        harness.text_backs.handle_erasure(wire(caller_erased(caller, token, "admin")))
        # The compacted topic's second version, without the number, changes nothing more.
        harness.text_backs.handle_erasure(wire(caller_erased(None, token, "admin")))
    with psycopg.connect(reporting_db) as conn:
        held = conn.execute(
            "SELECT caller FROM reporting.textback_calls WHERE phone_number = %s"
            " UNION ALL SELECT caller FROM reporting.textback_opt_outs WHERE phone_number = %s",
            (harness.number, harness.number),
        ).fetchall()
    assert held and all(caller.startswith("erased:") for (caller,) in held)

    harness.simulator.text_from(stopped, harness.number, "START")
    harness.clock.advance(hours=1)
    assert harness.text_backs.handle(harness.missed(stopped)) == "opted-out"
    assert harness.text_backs.handle(harness.missed(texted)) == "cooldown"
    assert len(harness.texts_to(texted)) == 1 and harness.texts_to(stopped) == []


def test_a_twilio_that_does_not_answer_is_tried_again_then_the_text_is_given_up(
    harness: Harness,
) -> None:
    harness.assign()
    waits: list[float] = []
    unreachable = TextBacks(
        harness.store,
        SmsSender(harness.simulator.account_sid, "token", f"http://127.0.0.1:{free_port()}"),
        broker_down,
        TextBackConfig(send_attempts=3, retry_seconds=0.5),
        clock=harness.clock,
        pause=waits.append,
    )
    caller = new_caller()
    call = harness.missed(caller)
    assert unreachable.handle(call) == "failed"
    assert waits == [0.5, 1.0]
    record = harness.store.call(call.call_sid)
    assert record is not None and record.status == "failed"
    # Redelivered, even to a working Twilio: at most once, never a late second try.
    assert harness.text_backs.handle(call) == "duplicate"
    assert harness.texts_to(caller) == []


def test_a_sms_sent_the_broker_did_not_take_is_published_later(
    harness: Harness, kafka_bootstrap: str, module_topics: Topics, producer: EventProducer
) -> None:
    harness.assign()
    broken = TextBacks(
        harness.store,
        sender(harness.simulator),
        broker_down,
        harness.text_backs.config,
        clock=harness.clock,
    )
    call = harness.missed(new_caller())
    assert broken.handle(call) == "sent"
    record = harness.store.call(call.call_sid)
    assert record is not None and not record.published

    assert harness.text_backs.republish() >= 1
    [event] = sms_sent_on_kafka(kafka_bootstrap, module_topics, call.call_sid)
    assert event["data"]["messageSid"] == record.message_sid


# --- the whole service: alerts from call events, the agents, sms.sent on Kafka

PATH_KINDS = {
    "/api/twilio/webhook": "voice",
    "/api/twilio/status": "status",
    "/api/twilio/dial-status": "dial-status",
    "/api/twilio/recording-status": "recording-status",
}
CLIENT_PHONE = "+14155559999"


@dataclass
class Service:
    process: ServiceProcess
    bootstrap: str
    topics: Topics
    group: str
    producer: EventProducer
    simulator: Simulator
    clock_file: Path

    def assign(
        self, number: str, client_id: str, text_back: TextBack | None, announce: bool = True
    ) -> NumberAssignment:
        """The number's assignment; `announce` False: its number.assigned is not out yet."""
        owner = NumberAssignment(
            number,
            client_id,
            CLIENT_PHONE,
            False,
            None,
            "spring",
            datetime.now(UTC) - timedelta(days=1),
            flow=Flow(text_back=text_back) if text_back else None,
        )
        if announce:
            self.producer.publish(self.topics.number_events, number_assigned(owner), number, 10)
        return owner

    def play(self, owner: NumberAssignment, caller: str, answered: bool) -> ForwardedCall:
        """One forwarded call's events as ingress and router publish them, in Twilio's order."""
        call = ForwardedCall(to=owner.phone_number, forward_to=CLIENT_PHONE, caller=caller)
        hooks = [call.incoming(), *(call.answered() if answered else call.unanswered())]
        for index, hook in enumerate(hooks):
            self._publish(webhook_event(hook))
            if index == 0:
                self._publish(routed_event(decide(owner.phone_number, owner), call.call_sid, None))
        return call

    def caught_up(self, topic: str) -> None:
        wait_committed_past(self.bootstrap, self.group, topic, timeout=60)

    def _publish(self, event: Event) -> None:
        self.producer.publish(self.topics.call_events, event, event.callSid, timeout=10)


def knows_the_number(db: str, number: str) -> bool:
    """Whether the service has the number's text-back from its number.assigned."""
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT message FROM reporting.textback_numbers WHERE phone_number = %s", (number,)
        ).fetchone()
    return row is not None and row[0] == MESSAGE


def webhook_event(hook: Webhook) -> Event:
    kind = PATH_KINDS[hook.path]
    return to_event(WEBHOOKS[kind], hook.params, f"https://example.test{hook.path}", None)


@pytest.fixture(scope="module")
def service(
    kafka_bootstrap: str,
    reporting_db: str,
    module_topics: Topics,
    producer: EventProducer,
    simulator: Simulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    group = f"{module_topics.prefix}reporting"
    # The service's clock: real time until a test writes the file.
    clock_file = tmp_path_factory.mktemp("textback") / "clock"
    env = {
        "SWITCHBOARD_ENV": "development",
        "ADMIN_API_TOKEN": "test-admin-token",
        "DATABASE_URL": reporting_db,
        "REPORTING_DATABASE_URL": reporting_db,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": module_topics.prefix,
        "REPORTING_GROUP_ID": group,
        "TWILIO_ACCOUNT_SID": simulator.account_sid,
        "TWILIO_AUTH_TOKEN": simulator.auth_token,
        "TWILIO_API_BASE_URL": simulator.base_url,
        "TWILIO_PHONE_NUMBER": "",
        "REPORTING_SMS_FROM": "",
        # A voicemail could follow an unanswered call: alert without waiting for it.
        "REPORTING_VOICEMAIL_WAIT_SECONDS": "0",
        "REPORTING_VOICEMAIL_LINK_WAIT_SECONDS": "0",
        "REPORTING_CLOCK_FILE": str(clock_file),
        # The clock is moved days ahead of the calls' own times.
        "REPORTING_TEXTBACK_MAX_AGE_HOURS": "1000",
    }
    with ServiceProcess("reporting", env, startup_timeout=60) as process:
        yield Service(
            process, kafka_bootstrap, module_topics, group, producer, simulator, clock_file
        )


def test_the_service_texts_a_missed_caller_once_and_an_answered_one_never(
    service: Service, reporting_db: str
) -> None:
    number = f"+1510555{next(_lines):04d}"
    service.simulator.own_number(number, "http://127.0.0.1:9/voice")
    # The number event is not out yet: the calls' own call.routed carry the flow.
    owner = service.assign(number, f"client-{uuid.uuid4().hex[:8]}", DAILY, announce=False)
    missed_caller, answering_caller = new_caller(), new_caller()

    answered = service.play(owner, answering_caller, answered=True)
    missed = service.play(owner, missed_caller, answered=False)
    [text] = wait_until(
        lambda: service.simulator.messages(to=missed_caller), timeout=60, message="text-back"
    )
    assert (text["from"], text["body"]) == (number, MESSAGE)
    [event] = wait_until(
        lambda: sms_sent_on_kafka(service.bootstrap, service.topics, missed.call_sid),
        timeout=30,
        message="sms.sent",
    )
    assert event["data"]["messageSid"] == text["sid"]

    # The same calls again (Twilio's retries, a replay): nothing more is sent.
    service.play(owner, missed_caller, answered=False)
    service.caught_up(service.topics.call_events)
    service.caught_up(alerts_topic(service.topics.prefix))
    assert len(service.simulator.messages(to=missed_caller)) == 1
    assert service.simulator.messages(to=answering_caller) == []
    assert answered.call_sid != missed.call_sid


def test_the_service_keeps_the_cooldown_and_never_texts_after_stop(
    service: Service, reporting_db: str
) -> None:
    number = f"+1510555{next(_lines):04d}"
    service.simulator.own_number(number, "http://127.0.0.1:9/voice")
    owner = service.assign(number, f"client-{uuid.uuid4().hex[:8]}", DAILY)
    caller = new_caller()
    wait_until(lambda: knows_the_number(reporting_db, number), timeout=120, message="its text-back")
    start = datetime.now(UTC)

    def texts() -> list[dict[str, Any]]:
        return service.simulator.messages(to=caller)

    def missed_call_at(moment: datetime) -> None:
        """A missed call while the service's clock reads `moment`, followed to its end."""
        set_file_clock(service.clock_file, moment)
        service.play(owner, caller, answered=False)
        service.caught_up(service.topics.call_events)
        service.caught_up(alerts_topic(service.topics.prefix))

    missed_call_at(start)
    assert len(texts()) == 1
    missed_call_at(start + timedelta(hours=23))  # within the cooldown
    assert len(texts()) == 1
    missed_call_at(start + timedelta(hours=25))  # after it
    assert len(texts()) == 2

    service.simulator.text_from(caller, number, "STOP")
    missed_call_at(start + timedelta(hours=50))  # Twilio refuses: 21610
    assert len(texts()) == 2
    with psycopg.connect(reporting_db) as conn:
        row = conn.execute(
            "SELECT 1 FROM reporting.textback_opt_outs WHERE phone_number = %s AND caller = %s",
            (number, caller),
        ).fetchone()
    assert row is not None

    # Opted back in at Twilio: the recorded STOP still holds, Twilio is not asked.
    service.simulator.text_from(caller, number, "START")
    missed_call_at(start + timedelta(hours=75))
    assert [m["direction"] for m in texts()] == ["outbound-api", "outbound-api"]

    with psycopg.connect(reporting_db) as conn:
        decided = conn.execute(
            "SELECT status, coalesce(error_code::text, reason) FROM reporting.textback_calls"
            " WHERE phone_number = %s ORDER BY decided_at",
            (number,),
        ).fetchall()
    assert decided == [
        ("sent", None),
        ("skipped", "cooldown"),
        ("sent", None),
        ("refused", "21610"),
        ("skipped", "opted-out"),
    ]
    exposed = requests.get(f"{service.process.url}/metrics", timeout=10).text
    for outcome in ("sent", "cooldown", "opted-out"):
        assert f'textbacks_total{{outcome="{outcome}"}}' in exposed
