"""TwiML interpretation and callback planning, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from twilio.twiml.voice_response import VoiceResponse

from services.twilio_sim.dialplan import (
    Answering,
    Dial,
    Gather,
    Hangup,
    InvalidTwiml,
    Leg,
    Playback,
    Record,
    Redirect,
    Reject,
    Target,
    dial_outcome,
    first_answer,
    parse,
    plan_dial,
    plan_record,
)
from services.twilio_sim.geography import locate
from services.twilio_sim.player import connection_overrides

BASE = "https://calls.example.com"
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
LEG = Leg(
    "AC" + "0" * 32,
    "CA" + "1" * 32,
    "+14155550123",
    "+15105550100",
    "inbound",
    locate("+14155550123"),
)
CHILD = "CA" + "2" * 32
RECORDING = "RE" + "3" * 32
RECORDING_URL = f"https://sim.example/2010-04-01/Accounts/AC/Recordings/{RECORDING}"


def router_twiml(record: bool = True) -> str:
    response = VoiceResponse()
    response.say("This call may be recorded for quality purposes.")
    attributes: dict[str, object] = {"action": "/api/twilio/dial-status", "timeout": 25}
    if record:
        attributes.update(
            record="record-from-answer-dual",
            recording_status_callback=f"{BASE}/api/twilio/recording-status",
        )
    dial = response.dial(**attributes)
    dial.number(
        "+14155559999",
        status_callback=f"{BASE}/api/twilio/status",
        status_callback_event="initiated ringing answered completed",
    )
    return str(response)


def forwarding(**overrides: object) -> Dial:
    fields: dict[str, object] = {
        "target": Target(
            "+14155559999",
            f"{BASE}/status",
            "POST",
            ("initiated", "ringing", "answered", "completed"),
        ),
        "action": f"{BASE}/dial-status",
        "timeout": 20,
        "record": "record-from-answer-dual",
        "recording_status_callback": f"{BASE}/recording-status",
    }
    fields.update(overrides)
    return Dial(**fields)  # type: ignore[arg-type]


def dial(outcome: str, ring: int = 6, talk: int = 42, **overrides: object):  # type: ignore[no-untyped-def]
    return plan_dial(
        forwarding(**overrides),
        LEG,
        Answering(outcome, ring, talk),
        START,
        CHILD,
        RECORDING,
        RECORDING_URL,
    )


def test_router_twiml_reads_as_say_then_dial_with_its_callbacks() -> None:
    document = parse(router_twiml(), f"{BASE}/api/twilio/webhook")
    say, verb = document.verbs
    assert isinstance(say, Playback) and say.verb == "Say" and say.seconds >= 1
    assert isinstance(verb, Dial)
    assert verb.action == f"{BASE}/api/twilio/dial-status"  # relative URL resolved
    assert (verb.method, verb.timeout, verb.record) == ("POST", 25, "record-from-answer-dual")
    assert verb.recording_status_callback_events == ("completed",)
    assert verb.target == Target(
        "+14155559999",
        f"{BASE}/api/twilio/status",
        "POST",
        ("initiated", "ringing", "answered", "completed"),
    )
    assert document.warnings == ()


def test_events_written_as_a_python_list_are_not_understood() -> None:
    twiml = (
        '<Response><Dial><Number statusCallback="https://x/s" '
        "statusCallbackEvent=\"['initiated', 'ringing']\">+14155559999</Number>"
        "</Dial></Response>"
    )
    document = parse(twiml)
    [verb] = document.verbs
    assert isinstance(verb, Dial)
    assert verb.target.status_callback_events == ()
    assert len(document.warnings) == 2


def test_dial_with_the_number_as_text_and_the_other_verbs_parse() -> None:
    twiml = (
        '<Response><Play>https://x/a.mp3</Play><Pause length="3"/>'
        '<Dial record="true">+14155559999</Dial><Record maxLength="30"/>'
        '<Redirect method="GET">next</Redirect><Reject reason="busy"/><Hangup/>'
        "<Enqueue>support</Enqueue></Response>"
    )
    document = parse(twiml, f"{BASE}/flow/start")
    play, pause, verb, record, redirect, reject, hangup = document.verbs
    assert (play, pause) == (Playback("Play", 5, "https://x/a.mp3"), Playback("Pause", 3))
    assert isinstance(verb, Dial) and verb.target.number == "+14155559999"
    assert verb.record == "record-from-answer" and verb.action is None
    assert record == Record(action=f"{BASE}/flow/start", max_length=30)  # defaults to the doc
    assert redirect == Redirect(f"{BASE}/flow/next", "GET")
    assert (reject, hangup) == (Reject("busy"), Hangup())
    assert document.warnings == ("<Enqueue> is not simulated and was skipped",)


@pytest.mark.parametrize(
    "twiml",
    [
        "not xml at all",
        "<Twiml><Hangup/></Twiml>",
        "<Response><Dial></Dial></Response>",
        '<Response><Dial method="PUT">+14155559999</Dial></Response>',
        '<Response><Dial record="always">+14155559999</Dial></Response>',
        '<Response><Dial timeout="soon">+14155559999</Dial></Response>',
        '<Response><Reject reason="spam"/></Response>',
    ],
)
def test_documents_twilio_would_refuse_raise_invalid_twiml(twiml: str) -> None:
    with pytest.raises(InvalidTwiml):
        parse(twiml)


def test_answered_dial_plans_progress_action_and_recording_in_order() -> None:
    plan = dial("completed", ring=6, talk=42)
    statuses = [c.params["CallStatus"] for c in plan.child_callbacks]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    assert [c.params["SequenceNumber"] for c in plan.child_callbacks] == ["0", "1", "2", "3"]
    for callback in plan.child_callbacks:
        assert callback.params["CallSid"] == CHILD
        assert callback.params["ParentCallSid"] == LEG.call_sid
        assert callback.params["Direction"] == "outbound-dial"
        assert parsedate_to_datetime(callback.params["Timestamp"]) == callback.at
    final = plan.child_callbacks[-1]
    assert (final.params["CallDuration"], final.params["Duration"]) == ("42", "1")
    assert plan.answered_at == START + timedelta(seconds=1 + 6)
    assert plan.ended_at == START + timedelta(seconds=1 + 6 + 42)

    assert plan.action is not None
    assert plan.action.params["CallSid"] == LEG.call_sid
    assert plan.action.params["DialCallStatus"] == "completed"
    assert plan.action.params["DialCallDuration"] == "42"
    assert plan.action.params["DialBridged"] == "true"
    assert plan.action.params["DialCallSid"] == CHILD

    assert plan.recording is not None
    assert (plan.recording.duration, plan.recording.channels) == (42, 2)
    [recorded] = plan.recording_callbacks
    assert recorded.params["CallSid"] == LEG.call_sid
    assert recorded.params["RecordingUrl"] == RECORDING_URL
    assert recorded.params["RecordingDuration"] == "42"
    assert recorded.at > plan.ended_at


def test_recording_from_ringing_includes_the_ring_time_and_mono_has_one_channel() -> None:
    plan = dial("completed", ring=6, talk=42, record="record-from-ringing")
    assert plan.recording is not None
    assert (plan.recording.duration, plan.recording.channels) == (48, 1)


def test_without_status_callback_events_only_the_final_status_is_sent() -> None:
    plan = dial("completed", target=Target("+14155559999", f"{BASE}/status"))
    assert [c.params["CallStatus"] for c in plan.child_callbacks] == ["completed"]
    assert plan.child_callbacks[0].params["SequenceNumber"] == "0"


def test_without_status_callback_or_action_nothing_is_sent_for_the_child() -> None:
    plan = dial("completed", target=Target("+14155559999"), action=None, record=None)
    assert plan.child_callbacks == () and plan.action is None and plan.recording is None


def test_no_answer_rings_for_the_dial_timeout_and_records_nothing() -> None:
    plan = dial("no-answer", ring=3)
    assert [c.params["CallStatus"] for c in plan.child_callbacks] == [
        "initiated",
        "ringing",
        "no-answer",
    ]
    assert plan.ring_seconds == 20
    assert plan.ended_at == START + timedelta(seconds=21)
    assert plan.recording is None and plan.recording_callbacks == ()
    assert plan.action is not None
    assert "DialCallDuration" not in plan.action.params
    assert plan.action.params["DialBridged"] == "false"


def test_answer_after_the_timeout_is_a_no_answer() -> None:
    assert dial("completed", ring=20).dial_status == "no-answer"
    assert dial("completed", ring=19).dial_status == "completed"


def test_busy_does_not_ring_and_failed_does_not_even_ring_back() -> None:
    busy = dial("busy")
    assert [c.params["CallStatus"] for c in busy.child_callbacks] == ["initiated", "busy"]
    failed = dial("failed")
    assert [c.params["CallStatus"] for c in failed.child_callbacks] == ["initiated", "failed"]
    assert failed.action is not None and failed.action.params["DialCallStatus"] == "failed"


def test_time_limit_caps_the_talk_time() -> None:
    plan = dial("completed", talk=600, time_limit=120)
    assert plan.talk_seconds == 120


def test_caller_id_changes_the_child_legs_from() -> None:
    plan = dial("completed", caller_id="+15105550100")
    assert plan.child_callbacks[0].params["From"] == "+15105550100"
    assert plan.child_callbacks[0].params["FromCity"] == "OAKLAND"


def test_voicemail_records_the_message_and_reports_the_caller_hung_up() -> None:
    record = Record(
        action=f"{BASE}/voicemail",
        max_length=60,
        recording_status_callback=f"{BASE}/recording-status",
    )
    plan = plan_record(record, LEG, 9, START, RECORDING, RECORDING_URL)
    assert plan.caller_hung_up
    assert plan.recording is not None and plan.recording.source == "RecordVerb"
    assert plan.action is not None
    assert plan.action.params["RecordingDuration"] == "9"
    assert plan.action.params["Digits"] == "hangup"
    [status] = plan.recording_callbacks
    assert status.params["RecordingChannels"] == "1"

    silent = plan_record(record, LEG, 0, START, RECORDING, RECORDING_URL)
    assert silent.recording is None and silent.action is None and silent.caller_hung_up

    long = plan_record(record, LEG, 90, START, RECORDING, RECORDING_URL)
    assert long.recording is not None and long.recording.duration == 60
    assert not long.caller_hung_up


def test_leg_parameters_carry_twilios_geography() -> None:
    params = LEG.params("ringing")
    assert (
        params["FromCity"],
        params["CallerState"],
        params["ToCity"],
        params["CalledCountry"],
    ) == ("SAN FRANCISCO", "CA", "OAKLAND", "US")
    assert (params["Direction"], params["ApiVersion"]) == ("inbound", "2010-04-01")


def test_connection_override_fragment_is_stripped_and_tunes_timeouts() -> None:
    url, timeout, retries = connection_overrides(
        f"{BASE}/api/twilio/webhook?x=1#rc=2&rt=5000", 15.0
    )
    assert url == f"{BASE}/api/twilio/webhook?x=1"
    assert timeout == (15.0, 5.0)
    assert retries == 2
    assert connection_overrides(f"{BASE}/a", 15.0) == (f"{BASE}/a", (15.0, 15.0), 0)


def test_several_numbers_parse_with_their_answer_urls_and_a_gather_keeps_its_action() -> None:
    response = VoiceResponse()
    dial = response.dial(timeout=20)
    dial.number("+14155550201", url="/flow/answer?screen=1")
    dial.number("+12125550202")
    document = parse(str(response), f"{BASE}/flow/start")
    [verb] = document.verbs
    assert isinstance(verb, Dial) and document.warnings == ()
    assert [t.number for t in verb.targets] == ["+14155550201", "+12125550202"]
    assert verb.targets[0].url == f"{BASE}/flow/answer?screen=1"
    assert verb.targets[1].url is None

    screen = VoiceResponse()
    gather = screen.gather(num_digits=1, timeout=8, action="/flow/screen")
    gather.say("Press 1 to accept this call.")
    [prompt] = parse(str(screen), f"{BASE}/flow/answer").verbs
    assert isinstance(prompt, Gather)
    assert (prompt.action, prompt.num_digits, prompt.timeout) == (f"{BASE}/flow/screen", 1, 8)
    assert prompt.seconds == prompt.prompt_seconds + 8


def test_the_first_phone_to_pick_up_wins_and_ties_go_to_the_earlier_number() -> None:
    verb = forwarding(timeout=20)
    assert first_answer(verb, [Answering("completed", 8, 30), Answering("completed", 3, 30)]) == 1
    assert first_answer(verb, [Answering("completed", 3, 30), Answering("completed", 3, 9)]) == 0
    assert first_answer(verb, [Answering("completed", 25, 30), Answering("busy", 0, 0)]) is None
    assert dial_outcome(["busy", "no-answer", "failed"]) == 1
    assert dial_outcome(["failed", "busy"]) == 1


def test_a_leg_still_ringing_when_another_answers_is_canceled() -> None:
    plan = plan_dial(
        forwarding(),
        LEG,
        Answering("completed", 15, 30),
        START,
        CHILD,
        RECORDING,
        RECORDING_URL,
        canceled_at=START + timedelta(seconds=5),
    )
    assert plan.dial_status == "canceled" and plan.answered_at is None
    assert [c.params["CallStatus"] for c in plan.child_callbacks] == [
        "initiated",
        "ringing",
        "canceled",
    ]
    assert plan.ended_at == START + timedelta(seconds=5) and plan.recording is None


def test_an_answered_leg_hung_up_before_the_bridge_is_completed_but_not_bridged() -> None:
    plan = plan_dial(
        forwarding(),
        LEG,
        Answering("completed", 4, 30, digits=""),
        START,
        CHILD,
        RECORDING,
        RECORDING_URL,
        answer_seconds=12,
        bridged=False,
    )
    assert plan.action is not None
    assert plan.action.params["DialCallStatus"] == "completed"
    assert plan.action.params["DialBridged"] == "false"
    assert plan.action.params["DialCallDuration"] == "12"
    assert plan.recording is None and plan.bridged is False
