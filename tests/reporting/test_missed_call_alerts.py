"""Missed-call alerts end to end: real Kafka, PostgreSQL, an aiosmtpd server, the simulator.

One reporting process (`python -m services.reporting`) serves the module;
each test has its own client and tracking number. The input events are made
by their producers' builders: ingress's `to_event` for Twilio's callbacks
(tests/twilio_calls.py plays them), router's routing decision and client
settings. Emails arrive at a real SMTP server, SMS at the Twilio simulator,
webhooks at a local HTTP receiver; "nothing else" is shown by waiting until
the worker committed past the events in question.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests

from devstack.promtool import check_metrics, ensure_promtool
from services.ingress.webhooks import WEBHOOKS, to_event
from services.reporting import messages
from services.reporting.alerts import alerts_topic
from services.reporting.clock import set_file_clock
from services.router import facts
from services.router.directory import Client, ClientSettings, NumberAssignment
from services.router.notifications import MissedCallAlerts, Notifications, QuietHours, Webhook
from services.router.privacy import caller_erased, erased_key
from services.router.routing import decide, routed_event
from switchboard.events import Event
from switchboard.kafka import EventProducer, Topics, ensure_topics
from tests.databases import fresh_database
from tests.kafka_read import read_topic, wait_committed_past
from tests.reporting.hook_receiver import HookReceiver
from tests.reporting.smtp_server import SmtpServer
from tests.support import ServiceProcess, wait_until
from tests.twilio_calls import ForwardedCall
from tests.twilio_calls import Webhook as Callback
from tests.twilio_sim.simulator import Simulator, running_simulator

ADMIN = "test-admin-token"
CLIENT_PHONE = "+14155559999"
_lines = itertools.count(4000)
PATH_KINDS = {
    "/api/twilio/webhook": "voice",
    "/api/twilio/status": "status",
    "/api/twilio/dial-status": "dial-status",
    "/api/twilio/recording-status": "recording-status",
}


@dataclass
class Stack:
    bootstrap: str
    topics: Topics
    group: str
    db: str
    simulator: Simulator
    smtp: SmtpServer
    hooks: HookReceiver
    clock_file: Path
    env: dict[str, str]
    process: ServiceProcess
    producer: EventProducer

    def restart(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.process.stop()
        self.process = ServiceProcess("reporting", self.env, startup_timeout=60).start()

    def publish(self, event: Event) -> None:
        topic = self.topics.client_events if event.type.startswith("client.") else None
        if topic is None:
            self.producer.publish(self.topics.call_events, event, event.callSid, timeout=10)
        else:
            self.producer.publish(topic, event, event.clientId, timeout=10)

    def caught_up(self, topic: str) -> None:
        wait_committed_past(self.bootstrap, self.group, topic, timeout=60)

    def deliveries(self, call_sid: str) -> list[dict[str, Any]]:
        reply = requests.get(
            f"{self.process.url}/api/reporting/deliveries",
            params={"callSid": call_sid},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )
        reply.raise_for_status()
        found: list[dict[str, Any]] = reply.json()["deliveries"]
        return found

    def alert_row(self, call_sid: str) -> tuple[Any, ...] | None:
        with psycopg.connect(self.db) as conn:
            return conn.execute(
                "SELECT event, due_at, published_at FROM reporting.alerts WHERE call_sid = %s",
                (call_sid,),
            ).fetchone()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with fresh_database(postgres_url) as db:
        topics = Topics(prefix=f"t{uuid.uuid4().hex[:12]}.")
        ensure_topics(kafka_bootstrap, topics)
        clock_file = tmp_path_factory.mktemp("reporting") / "clock"
        group = f"{topics.prefix}reporting"
        with running_simulator() as simulator, SmtpServer() as smtp, HookReceiver() as hooks:
            env = {
                "SWITCHBOARD_ENV": "development",
                "ADMIN_API_TOKEN": ADMIN,
                "DATABASE_URL": db,
                "REPORTING_DATABASE_URL": db,
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "KAFKA_TOPIC_PREFIX": topics.prefix,
                "REPORTING_GROUP_ID": group,
                "SMTP_URL": smtp.url,
                "TWILIO_ACCOUNT_SID": simulator.account_sid,
                "TWILIO_AUTH_TOKEN": simulator.auth_token,
                "TWILIO_API_BASE_URL": simulator.base_url,
                "TWILIO_PHONE_NUMBER": "",
                "REPORTING_SMS_FROM": "",
                "REPORTING_CLOCK_FILE": str(clock_file),
                "REPORTING_RETRY_BASE_SECONDS": "0.2",
                "REPORTING_RETRY_MAX_SECONDS": "1",
                "REPORTING_DISPATCH_INTERVAL_SECONDS": "0.2",
            }
            process = ServiceProcess("reporting", env, startup_timeout=60).start()
            producer = EventProducer(kafka_bootstrap)
            made = Stack(
                kafka_bootstrap,
                topics,
                group,
                db,
                simulator,
                smtp,
                hooks,
                clock_file,
                env,
                process,
                producer,
            )
            try:
                yield made
            finally:
                producer.close()
                made.process.stop()


@dataclass(frozen=True)
class Tenant:
    client_id: str
    number: str
    email: str
    sms: str
    hook_path: str
    secret: str


def new_tenant(stack: Stack) -> Tenant:
    line = next(_lines)
    number = f"+1510555{line:04d}"
    stack.simulator.own_number(number, "https://example.test/api/twilio/webhook")
    return Tenant(
        client_id=str(uuid.uuid4()),
        number=number,
        email=f"owner{line}@smile.example",
        sms=f"+1415666{line:04d}",
        hook_path=f"/hooks/{line}",
        secret=f"whsec_{uuid.uuid4().hex}",
    )


def settings_changed(
    stack: Stack,
    tenant: Tenant,
    notifications: Notifications | None,
    timezone: str = "America/Los_Angeles",
) -> Event:
    """Router's client.settings-changed for the tenant, carrying its notification settings."""
    moment = datetime.now(UTC)
    settings = ClientSettings(name="Smile Dental", timezone=timezone)
    return facts.client_settings_changed(
        Client(tenant.client_id, settings, moment, moment), notifications
    )


def every_channel(
    stack: Stack, tenant: Tenant, quiet: QuietHours | None = None, webhook_only: bool = False
) -> Notifications:
    hook = Webhook(stack.hooks.base_url + tenant.hook_path, tenant.secret)
    if webhook_only:
        return Notifications(MissedCallAlerts(webhook=hook))
    return Notifications(MissedCallAlerts((tenant.email,), (tenant.sms,), hook, quiet))


def play(
    stack: Stack, tenant: Tenant, answered: bool, caller: str = "+12125550199"
) -> ForwardedCall:
    """Publish one forwarded call's events as ingress and router would, in Twilio's order."""
    call = ForwardedCall(to=tenant.number, forward_to=CLIENT_PHONE, caller=caller)
    hooks = [call.incoming(), *(call.answered() if answered else call.unanswered())]
    owner = NumberAssignment(
        tenant.number, tenant.client_id, CLIENT_PHONE, False, None, "spring", datetime.now(UTC)
    )
    for index, hook in enumerate(hooks):
        stack.publish(webhook_event(hook))
        if index == 0:
            stack.publish(routed_event(decide(tenant.number, owner), call.call_sid, None))
    return call


def test_a_missed_call_sends_one_email_one_sms_and_one_signed_webhook(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.publish(settings_changed(stack, tenant, every_channel(stack, tenant)))
    call = play(stack, tenant, answered=False)

    [mail] = wait_until(lambda: stack.smtp.messages_to(tenant.email), timeout=60, message="email")
    [text] = wait_until(lambda: stack.simulator.messages(to=tenant.sms), timeout=60, message="sms")
    [hook] = wait_until(lambda: stack.hooks.hooks(tenant.hook_path), timeout=60, message="hook")

    body = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Smile Dental" in body and "+12125550199" in body and tenant.number in body
    assert "no answer" in body and "(America/Los_Angeles)" in body
    assert mail["Subject"] == f"Missed call from +12125550199 to {tenant.number}"
    assert text["from"] == tenant.number and "+12125550199" in text["body"]
    assert messages.verify(
        tenant.secret, hook.body, hook.headers[messages.SIGNATURE_HEADER], datetime.now(UTC)
    )
    alert = json.loads(hook.body)
    assert alert["type"] == "alert.missed-call" and alert["callSid"] == call.call_sid
    data = alert["data"]
    assert (data["clientId"], data["calledNumber"], data["callerNumber"], data["outcome"]) == (
        tenant.client_id,
        tenant.number,
        "+12125550199",
        "no-answer",
    )
    called_at = datetime.fromisoformat(data["calledAt"].replace("Z", "+00:00"))
    local = called_at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert datetime.fromisoformat(data["calledAtLocal"]) == local
    assert data["calledAtLocal"] == local.isoformat()
    assert data["voicemail"] is None

    # The same events again (Twilio's retries, a replay): the alert is not sent again.
    play_again(stack, call, tenant)
    stack.caught_up(stack.topics.call_events)
    stack.caught_up(alerts_topic(stack.topics.prefix))
    wait_until(
        lambda: all(d["status"] == "delivered" for d in stack.deliveries(call.call_sid)) or None,
        timeout=30,
        message="every delivery recorded",
    )
    assert len(stack.smtp.messages_to(tenant.email)) == 1
    assert len(stack.simulator.messages(to=tenant.sms)) == 1
    assert len(stack.hooks.hooks(tenant.hook_path)) == 1
    assert sorted(d["channel"] for d in stack.deliveries(call.call_sid)) == [
        "email",
        "sms",
        "webhook",
    ]


def play_again(stack: Stack, call: ForwardedCall, tenant: Tenant) -> None:
    owner = NumberAssignment(
        tenant.number, tenant.client_id, CLIENT_PHONE, False, None, "spring", datetime.now(UTC)
    )
    stack.publish(routed_event(decide(tenant.number, owner), call.call_sid, None))
    for hook in [call.incoming(), *call.unanswered()]:
        stack.publish(webhook_event(hook))


def webhook_event(hook: Callback) -> Event:
    """What ingress publishes for one of Twilio's callbacks."""
    kind = PATH_KINDS[hook.path]
    return to_event(WEBHOOKS[kind], hook.params, f"https://example.test{hook.path}", None)


def test_an_answered_call_alerts_nobody(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.publish(settings_changed(stack, tenant, every_channel(stack, tenant)))
    call = play(stack, tenant, answered=True)

    stack.caught_up(stack.topics.call_events)
    assert stack.alert_row(call.call_sid) is None
    assert stack.deliveries(call.call_sid) == []
    assert stack.smtp.messages_to(tenant.email) == []
    assert stack.simulator.messages(to=tenant.sms) == []


def test_a_client_with_alerts_off_gets_none_but_the_alert_is_published(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.publish(settings_changed(stack, tenant, None))
    call = play(stack, tenant, answered=False)

    row = wait_until(
        lambda: (lambda r: r if r and r[2] else None)(stack.alert_row(call.call_sid)),
        timeout=60,
        message="the alert published",
    )
    assert row[0]["data"]["outcome"] == "no-answer"
    stack.caught_up(alerts_topic(stack.topics.prefix))
    assert stack.deliveries(call.call_sid) == []
    assert stack.smtp.messages_to(tenant.email) == []
    assert stack.simulator.messages(to=tenant.sms) == []
    assert stack.hooks.hooks(tenant.hook_path) == []


def test_quiet_hours_hold_the_alert_until_they_end(stack: Stack) -> None:
    tenant = new_tenant(stack)
    quiet = QuietHours("22:00", "07:00")
    stack.publish(settings_changed(stack, tenant, every_channel(stack, tenant, quiet)))
    zone = ZoneInfo("America/Los_Angeles")
    late = datetime(2026, 12, 4, 23, 30, tzinfo=zone)
    set_file_clock(stack.clock_file, late)
    try:
        call = play(stack, tenant, answered=False)
        held = wait_until(
            lambda: (lambda d: d if len(d) == 3 else None)(stack.deliveries(call.call_sid)),
            timeout=60,
            message="the deliveries planned",
        )
        end = datetime(2026, 12, 5, 7, 0, tzinfo=zone)
        assert {datetime.fromisoformat(d["notBefore"]) for d in held} == {end}
        assert all(d["status"] == "pending" and d["attempts"] == 0 for d in held)
        assert stack.smtp.messages_to(tenant.email) == []

        set_file_clock(stack.clock_file, end + timedelta(seconds=1))
        wait_until(lambda: stack.smtp.messages_to(tenant.email), timeout=60, message="email")
        wait_until(lambda: stack.simulator.messages(to=tenant.sms), timeout=60, message="sms")
        wait_until(lambda: stack.hooks.hooks(tenant.hook_path), timeout=60, message="webhook")
    finally:
        stack.clock_file.unlink(missing_ok=True)


def test_a_webhook_answered_500_three_times_then_200_is_delivered_once(stack: Stack) -> None:
    tenant = new_tenant(stack)
    notifications = every_channel(stack, tenant, webhook_only=True)
    stack.hooks.answer(tenant.hook_path, 500, 500, 500)
    stack.publish(settings_changed(stack, tenant, notifications))
    call = play(stack, tenant, answered=False)

    [delivery] = wait_until(
        lambda: [d for d in stack.deliveries(call.call_sid) if d["status"] == "delivered"],
        timeout=60,
        message="the webhook delivered",
    )
    hooks = stack.hooks.hooks(tenant.hook_path)
    assert [hook.status for hook in hooks] == [500, 500, 500, 200]
    assert delivery["attempts"] == 4
    assert len({hook.headers[messages.DELIVERY_HEADER] for hook in hooks}) == 1
    assert len({hook.body for hook in hooks}) == 1


def test_a_webhook_that_never_answers_is_dead_lettered_for_the_admin(stack: Stack) -> None:
    tenant = new_tenant(stack)
    notifications = every_channel(stack, tenant, webhook_only=True)
    stack.hooks.answer(tenant.hook_path, 404)
    stack.publish(settings_changed(stack, tenant, notifications))
    call = play(stack, tenant, answered=False)

    reply = wait_until(
        lambda: (
            lambda r: (
                r if [d for d in r.json()["deliveries"] if d["callSid"] == call.call_sid] else None
            )
        )(
            requests.get(
                f"{stack.process.url}/api/reporting/deliveries",
                params={"status": "dead", "clientId": tenant.client_id},
                headers={"Authorization": f"Bearer {ADMIN}"},
                timeout=10,
            )
        ),
        timeout=60,
        message="the webhook dead-lettered",
    )
    [dead] = reply.json()["deliveries"]
    assert dead["channel"] == "webhook" and "404" in dead["lastError"]
    assert "secret" not in json.dumps(dead)
    refused = requests.get(f"{stack.process.url}/api/reporting/deliveries", timeout=10)
    assert refused.status_code == 401


def test_a_worker_killed_after_the_sms_and_before_the_email_sends_each_once(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.smtp.defer(tenant.email)  # the mail server is down for this recipient: email waits
    stack.publish(settings_changed(stack, tenant, every_channel(stack, tenant)))
    call = play(stack, tenant, answered=False)

    def sms_sent_email_waiting() -> bool:
        by_channel = {d["channel"]: d for d in stack.deliveries(call.call_sid)}
        email = by_channel.get("email")
        return (
            by_channel.get("sms", {}).get("status") == "delivered"
            and email is not None
            and email["attempts"] >= 1
            and email["status"] != "delivered"
        )

    wait_until(sms_sent_email_waiting, timeout=60, message="the SMS sent, the email not")
    stack.restart(kill=True)
    stack.smtp.accept(tenant.email)

    wait_until(lambda: stack.smtp.messages_to(tenant.email), timeout=60, message="email")
    wait_until(
        lambda: all(d["status"] == "delivered" for d in stack.deliveries(call.call_sid)) or None,
        timeout=60,
        message="every delivery recorded",
    )
    stack.caught_up(stack.topics.call_events)
    stack.caught_up(alerts_topic(stack.topics.prefix))
    assert len(stack.smtp.messages_to(tenant.email)) == 1
    assert len(stack.simulator.messages(to=tenant.sms)) == 1
    assert len(stack.hooks.hooks(tenant.hook_path)) == 1


def test_a_message_that_is_not_an_event_is_dead_lettered_with_the_reason(stack: Stack) -> None:
    key = f"CAbad{uuid.uuid4().hex[:8]}"
    stack.producer.publish_raw(stack.topics.call_events, b"not an event", key, timeout=10)

    def dead() -> list[dict[str, Any]]:
        found = read_topic(stack.bootstrap, stack.topics.dead_letters, settle=0.5)
        return [
            m["value"] for m in found if m["key"] == key and m["value"]["consumer"] == "reporting"
        ]

    [letter] = wait_until(dead, timeout=60, message="the dead letter")
    assert letter["value"] == "not an event" and "not JSON" in letter["reason"]
    assert letter["topic"] == stack.topics.call_events


def test_a_second_worker_joining_and_leaving_sends_each_alert_once(stack: Stack) -> None:
    tenant = new_tenant(stack)
    notifications = Notifications(MissedCallAlerts(email=(tenant.email,)))
    stack.publish(settings_changed(stack, tenant, notifications))
    second = ServiceProcess("reporting", stack.env, startup_timeout=60).start()
    try:
        # The group rebalanced: the second worker holds some of the call-events partitions.
        wait_until(
            lambda: (
                f'topic="{stack.topics.call_events}"'
                in requests.get(f"{second.url}/metrics", timeout=10).text
            ),
            timeout=60,
            message="call-events partitions on the second worker",
        )
        calls = [
            play(stack, tenant, answered=False, caller=f"+1212555{7000 + i:04d}") for i in range(6)
        ]
        wait_until(
            lambda: len(stack.smtp.messages_to(tenant.email)) >= len(calls) or None,
            timeout=90,
            message="every alert email",
        )
    finally:
        second.stop()
    stack.caught_up(stack.topics.call_events)
    stack.caught_up(alerts_topic(stack.topics.prefix))
    mails = stack.smtp.messages_to(tenant.email)
    assert sorted(str(m["X-Switchboard-Call"]) for m in mails) == sorted(c.call_sid for c in calls)


def test_a_webhook_failing_for_a_whole_day_is_dead_lettered_after_24_hours(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.hooks.answer(tenant.hook_path, *([503] * 1000))
    stack.publish(settings_changed(stack, tenant, every_channel(stack, tenant, webhook_only=True)))
    try:
        call = play(stack, tenant, answered=False)
        wait_until(
            lambda: [d for d in stack.deliveries(call.call_sid) if d["attempts"] >= 2],
            timeout=60,
            message="the webhook retried",
        )
        [retrying] = stack.deliveries(call.call_sid)
        assert retrying["status"] in ("pending", "sending")
        first = datetime.fromisoformat(retrying["firstAttemptAt"])
        set_file_clock(stack.clock_file, first + timedelta(hours=24, seconds=1))
        [dead] = wait_until(
            lambda: [d for d in stack.deliveries(call.call_sid) if d["status"] == "dead"],
            timeout=60,
            message="the webhook given up",
        )
        assert "503" in dead["lastError"]
    finally:
        stack.clock_file.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("query", "named"),
    [({"status": "lost"}, "status must be one of"), ({"limit": "0"}, "limit")],
)
def test_a_bad_deliveries_query_is_a_400_naming_it(
    stack: Stack, query: dict[str, str], named: str
) -> None:
    reply = requests.get(
        f"{stack.process.url}/api/reporting/deliveries",
        params=query,
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert named in reply.json()["error"]["message"]


def test_metrics_count_consumed_events_and_deliveries_and_pass_promtool(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.publish(settings_changed(stack, tenant, every_channel(stack, tenant, webhook_only=True)))
    call = play(stack, tenant, answered=False)
    wait_until(lambda: stack.hooks.hooks(tenant.hook_path), timeout=60, message="webhook")

    def scraped() -> str | None:
        text = requests.get(f"{stack.process.url}/metrics", timeout=10).text
        topic = stack.topics.call_events
        wanted = f'kafka_consumer_lag{{partition="0",service="reporting",topic="{topic}"}}'
        return text if wanted in text else None

    text = wait_until(scraped, timeout=30, message="the lag of call-events")
    assert 'events_consumed_total{service="reporting",type="call.dial-completed"}' in text
    assert 'events_produced_total{service="reporting",type="alert.missed-call"}' in text
    assert 'alert_deliveries_total{channel="webhook",result="delivered"}' in text
    assert 'alert_deliveries{service="reporting",status="delivered"}' in text
    assert call.call_sid not in text
    checked = check_metrics(text, ensure_promtool())
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_erased_caller_is_named_by_their_token_in_the_alerts_kept(stack: Stack) -> None:
    tenant = new_tenant(stack)
    stack.publish(settings_changed(stack, tenant, every_channel(stack, tenant)))
    caller = "+1212555" + str(uuid.uuid4().int)[:4]
    call = play(stack, tenant, answered=False, caller=caller)
    wait_until(lambda: stack.deliveries(call.call_sid), timeout=60, message="deliveries kept")

    token = "erased:" + uuid.uuid4().hex
    erasure = caller_erased(caller, token, "admin")
    stack.producer.publish(stack.topics.client_events, erasure, erased_key(token), timeout=10)

    def kept_texts() -> str:
        with psycopg.connect(stack.db) as conn:
            rows = conn.execute(
                "SELECT a.event::text, d.alert::text FROM reporting.alerts a"
                " JOIN reporting.deliveries d USING (call_sid) WHERE call_sid = %s",
                (call.call_sid,),
            ).fetchall()
        return " ".join(text for row in rows for text in row)

    wait_until(lambda: token in kept_texts(), timeout=60, message="the token in the alerts")
    assert caller not in kept_texts()
