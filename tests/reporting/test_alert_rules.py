"""The pure parts of missed-call alerts: a call's outcome, quiet hours, plans, signatures."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.ingress.webhooks import WEBHOOKS, to_event
from services.reporting import calls, messages, notifications
from services.reporting.alerts import MissedCall, Voicemail, missed_call_alert, missed_call_of
from services.reporting.calls import Waits, decide, fold
from services.reporting.channels import GiveUp, Retry, WebhookPoster
from services.reporting.health import WorkerState, until_done
from services.reporting.notifications import ClientSettings, QuietHours, Webhook, plan
from services.router.directory import NumberAssignment
from services.router.flows import Flow, TextBack
from services.router.routing import decide as route
from services.router.routing import routed_event
from switchboard import events
from switchboard.events import Event
from tests.reporting.hook_receiver import HookReceiver
from tests.support import free_port
from tests.twilio_calls import ForwardedCall

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
WAITS = Waits(timedelta(seconds=30), timedelta(seconds=60))
NUMBER = "+15105550100"
KINDS = {
    "/api/twilio/webhook": "voice",
    "/api/twilio/status": "status",
    "/api/twilio/dial-status": "dial-status",
    "/api/twilio/recording-status": "recording-status",
}


def call_events(answered: bool) -> tuple[ForwardedCall, list[Event]]:
    call = ForwardedCall(to=NUMBER, forward_to="+14155559999")
    owner = NumberAssignment(NUMBER, "c1", "+14155559999", False, None, None, NOW)
    hooks = [call.incoming(), *(call.answered() if answered else call.unanswered())]
    made = [
        to_event(WEBHOOKS[KINDS[h.path]], h.params, "https://x.test" + h.path, None) for h in hooks
    ]
    made.insert(1, routed_event(route(NUMBER, owner), call.call_sid, None))
    return call, made


def folded(evs: list[Event]) -> calls.State | None:
    state = None
    for event in evs:
        state = fold(state, event)
    return state


def test_an_unanswered_forwarded_call_is_alerted_now_as_no_answer() -> None:
    _, evs = call_events(answered=False)
    state = folded(evs)
    assert state is not None
    verdict = decide(state, NOW, WAITS, voicemail_possible=False)
    assert (verdict.action, verdict.outcome, verdict.due) == ("alert", "no-answer", NOW)


def test_an_answered_call_is_dropped_and_an_open_one_waits() -> None:
    _, evs = call_events(answered=True)
    assert decide(folded(evs) or {}, NOW, WAITS, False).action == "drop"
    _, missed = call_events(answered=False)
    assert decide(folded(missed[:-1]) or {}, NOW, WAITS, False).action == "open"


def test_the_outcome_does_not_depend_on_the_order_of_events() -> None:
    _, evs = call_events(answered=False)
    shuffled = [evs[0], *random.Random(7).sample(evs[1:], len(evs) - 1)]
    assert calls.outcome(folded(shuffled) or {}) == "no-answer"


def test_trailing_events_of_a_forgotten_call_start_no_state() -> None:
    _, evs = call_events(answered=False)
    assert fold(None, evs[-1]) is None


def test_a_number_that_takes_voicemail_waits_for_it_then_alerts() -> None:
    _, evs = call_events(answered=False)
    verdict = decide(folded(evs) or {}, NOW, WAITS, voicemail_possible=True)
    assert (verdict.action, verdict.outcome, verdict.due) == (
        "alert",
        "no-answer",
        NOW + WAITS.voicemail,
    )
    assert calls.voicemail_possible({"afterHours": "voicemail"})
    assert not calls.voicemail_possible({"afterHours": "forward", "afterHoursNumber": "+1"})
    assert not calls.voicemail_possible(None)


def test_a_call_is_judged_by_the_flow_it_was_routed_with_not_its_numbers_latest() -> None:
    call = ForwardedCall(to=NUMBER, forward_to="+14155559999")
    flow = Flow(text_back=TextBack("Sorry!", 24))
    owner = NumberAssignment(NUMBER, "c1", "+14155559999", False, None, None, NOW, flow=flow)
    state = fold(None, routed_event(route(NUMBER, owner), call.call_sid, None)) or {}
    latest = {"flow": {"afterHours": "forward", "afterHoursNumber": "+14155550000"}}
    assert calls.flow_of(state, latest) == flow.to_json()
    assert calls.voicemail_possible(calls.flow_of(state, latest))
    # Routed without a flow: none, whatever the number has since.
    plain = NumberAssignment(NUMBER, "c1", "+14155559999", False, None, None, NOW)
    bare = fold(None, routed_event(route(NUMBER, plain), call.call_sid, None)) or {}
    assert calls.flow_of(bare, latest) is None
    # An event from before call.routed carried its flow: the number's latest stands in.
    older = {key: value for key, value in state.items() if key != "flow"}
    assert calls.flow_of(older, latest) == latest["flow"]


def test_a_voicemail_is_alerted_once_stored_or_after_the_link_wait() -> None:
    call, evs = call_events(answered=False)
    params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call.call_sid,
        "RecordingSid": "RE" + "1" * 32,
        "RecordingUrl": "https://api.twilio.com/x",
        "RecordingStatus": "completed",
        "RecordingDuration": "12",
        "RecordingSource": "RecordVerb",
    }
    voicemail = to_event(WEBHOOKS["recording-status"], params, "https://x.test/r", None)
    state = folded([*evs, voicemail]) or {}
    waiting = decide(state, NOW, WAITS, voicemail_possible=True)
    assert (waiting.outcome, waiting.due, waiting.voicemail_stored) == (
        "voicemail",
        NOW + WAITS.link,
        False,
    )
    stored = dict(state, stored=["RE" + "1" * 32])
    ready = decide(stored, NOW, WAITS, voicemail_possible=True)
    assert (ready.outcome, ready.due, ready.voicemail_stored) == ("voicemail", NOW, True)


LA = "America/Los_Angeles"


@pytest.mark.parametrize(
    ("local", "held_until"),
    [
        (datetime(2026, 12, 4, 23, 30), datetime(2026, 12, 5, 7, 0)),
        (datetime(2026, 12, 5, 6, 59), datetime(2026, 12, 5, 7, 0)),
        (datetime(2026, 12, 5, 7, 0), None),
        (datetime(2026, 12, 4, 21, 59), None),
        # the night the clocks go back (1 Nov 2026): 07:00 is still the wall clock's 07:00
        (datetime(2026, 10, 31, 23, 0), datetime(2026, 11, 1, 7, 0)),
    ],
)
def test_quiet_hours_spanning_midnight_hold_until_their_end_on_the_wall_clock(
    local: datetime, held_until: datetime | None
) -> None:
    zone = ZoneInfo(LA)
    quiet = QuietHours(time(22, 0), time(7, 0))
    expected = held_until.replace(tzinfo=zone) if held_until else None
    assert quiet.held_until(local.replace(tzinfo=zone).astimezone(UTC), LA) == expected


def test_quiet_hours_within_one_day() -> None:
    quiet = QuietHours(time(12, 0), time(13, 0))
    noon = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
    assert quiet.held_until(noon, "UTC") == datetime(2026, 12, 4, 13, 0, tzinfo=ZoneInfo("UTC"))
    assert quiet.held_until(noon + timedelta(hours=1), "UTC") is None


def test_plan_makes_one_delivery_per_channel_and_recipient() -> None:
    settings = ClientSettings(
        "c1",
        emails=("a@x.example", "a@x.example", "b@x.example"),
        sms=("+14155550000",),
        webhook=Webhook("https://crm.example/h", "s3cret"),
    )
    planned = plan(settings, NOW)
    assert [(d.channel, d.recipient) for d in planned] == [
        ("sms", "+14155550000"),
        ("email", "a@x.example"),
        ("email", "b@x.example"),
        ("webhook", "https://crm.example/h"),
    ]
    assert {d.not_before for d in planned} == {NOW}
    assert planned[-1].secret == "s3cret"


def test_alerts_off_or_a_deleted_client_plans_nothing() -> None:
    assert plan(None, NOW) == []
    assert plan(ClientSettings("c1"), NOW) == []
    assert plan(ClientSettings("c1", emails=("a@x.example",), deleted=True), NOW) == []


def test_settings_from_router_event_data_round_trip() -> None:
    data = {
        "clientId": "c1",
        "name": "Smile",
        "timezone": LA,
        "notifications": {
            "missedCall": {
                "email": ["a@x.example"],
                "sms": [],
                "webhook": {"url": "https://crm.example/h", "secret": "k"},
                "quietHours": {"start": "22:00", "end": "07:00"},
            },
            "reports": {"weekly": True, "monthly": False, "email": []},
        },
    }
    settings = ClientSettings.of_event(data, "2026-12-04T00:00:00Z")
    assert settings.alerts_on and settings.quiet_hours == QuietHours(time(22), time(7))
    assert ClientSettings.from_json(settings.to_json()) == settings
    assert not ClientSettings.of_event({"clientId": "c1"}, "").alerts_on


def test_the_webhook_signature_verifies_only_for_its_body_secret_and_time() -> None:
    body = b'{"a":1}'
    header = messages.sign("k", body, NOW).header()
    assert header.startswith(f"t={int(NOW.timestamp())},v1=")
    assert messages.verify("k", body, header, NOW)
    assert not messages.verify("other", body, header, NOW)
    assert not messages.verify("k", b'{"a":2}', header, NOW)
    assert not messages.verify("k", body, header, NOW + timedelta(minutes=10))


# A missed call that left a voicemail, as the alert builder and the messages take it.
VOICEMAIL_CALL = MissedCall(
    "CA1",
    "c1",
    NUMBER,
    "+12125550199",
    "voicemail",
    NOW,
    "Smile",
    LA,
    "spring",
    Voicemail("RE1", 12, "https://edge/x", "2026-12-04T20:15:00Z"),
)


def test_the_alert_builder_validates_and_reads_back() -> None:
    call = VOICEMAIL_CALL
    alert = missed_call_alert(call, NOW)
    events.validate(alert.to_dict())
    assert alert.id == missed_call_alert(replace(call, outcome="voicemail"), NOW + timedelta(1)).id
    assert missed_call_of(alert) == call
    assert alert.data["calledAtLocal"] == "2026-12-04T12:00:00-08:00"
    with pytest.raises(ValueError):
        missed_call_alert(replace(call, outcome="completed"))


def test_messages_name_client_numbers_local_time_outcome_and_voicemail_link() -> None:
    call = replace(
        VOICEMAIL_CALL, campaign=None, voicemail=Voicemail("RE1", 12, "https://edge/x", None)
    )
    for text in (messages.text(call), messages.sms(call)):
        assert "Smile" in text and NUMBER in text and "+12125550199" in text
        assert "Fri 4 Dec 2026, 12:00 PST" in text and "voicemail left" in text
        assert "https://edge/x" in text
    email = messages.email(call, "from@x", "to@x", "CA1/email/to@x")
    assert (
        email["Message-ID"]
        == messages.email(call, "from@x", "to@x", "CA1/email/to@x")["Message-ID"]
    )


def test_channels_are_known() -> None:
    assert set(notifications.CHANNELS) == {"email", "sms", "webhook"}


def test_a_webhook_nobody_answers_is_retried_and_a_4xx_is_not() -> None:
    poster = WebhookPoster(timeout=2.0)
    closed = f"http://127.0.0.1:{free_port()}/hook"
    assert isinstance(poster.send(closed, b"{}", "k", "id", NOW), Retry)
    with HookReceiver() as hooks:
        hooks.answer("/gone", 410)
        hooks.answer("/busy", 429)
        assert isinstance(poster.send(hooks.base_url + "/gone", b"{}", "k", "id", NOW), GiveUp)
        assert isinstance(poster.send(hooks.base_url + "/busy", b"{}", "k", "id", NOW), Retry)


def test_a_failing_step_is_retried_and_named_for_readyz_until_it_works() -> None:
    worker = WorkerState()
    tries: list[bool] = []
    seen: list[dict[str, str]] = []

    async def step() -> None:
        tries.append(True)
        if len(tries) < 3:
            raise OSError("database down")
        seen.append(dict(worker.problems))

    asyncio.run(until_done("planning deliveries", step, worker, first=0.01))
    assert len(tries) == 3
    assert seen == [{"planning deliveries": "OSError: database down"}]
    assert worker.problems == {}
