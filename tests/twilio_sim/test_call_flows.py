"""Call flows as Twilio plays them: several phones at once, one after another, screening, voicemail.

The receiver stands in for router: it serves the flow's TwiML (built with
twilio's VoiceResponse, as router builds it) and records every request the
simulator makes. Each dialed phone is scripted through the call request's
`answerers`.
"""

from __future__ import annotations

from typing import Any

import requests
from twilio.twiml.voice_response import VoiceResponse

from tests.twilio_sim.receiver import Received, WebhookReceiver
from tests.twilio_sim.simulator import Simulator

CALLER = "+14155550142"
ALICE, BOB, CAROL = "+14155550201", "+12125550202", "+16465550203"
EVENTS = "initiated ringing answered completed"


def ring(
    receiver: WebhookReceiver,
    numbers: list[str],
    action: str = "/dial-status",
    timeout: int = 20,
    answer_url: str | None = None,
) -> str:
    response = VoiceResponse()
    dial = response.dial(action=f"{receiver.base_url}{action}", method="POST", timeout=timeout)
    extra = {} if answer_url is None else {"url": f"{receiver.base_url}{answer_url}"}
    for number in numbers:
        dial.number(
            number,
            status_callback=f"{receiver.base_url}/child-status",
            status_callback_event=EVENTS,
            **extra,
        )
    return str(response)


def screening(receiver: WebhookReceiver, whisper: str = "Call from Google Ads") -> str:
    response = VoiceResponse()
    response.say(whisper)
    gather = response.gather(num_digits=1, timeout=8, action=f"{receiver.base_url}/screen")
    gather.say("Press 1 to accept this call.")
    response.hangup()
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def finals(receiver: WebhookReceiver) -> dict[str, Received]:
    """The last child status callback of each dialed number."""
    last: dict[str, Received] = {}
    for got in receiver.received("/child-status"):
        last[got.params["To"]] = got
    return last


def play_flow(sim: Simulator, number: str, **call: Any) -> dict[str, Any]:
    sid = sim.place_call(**{"from": CALLER, "to": number, **call})
    play = sim.wait_for_call(sid)
    assert play["error"] is None, play["error"]
    return play


def test_every_number_rings_at_once_and_the_first_to_answer_wins(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", ring(receiver, [ALICE, BOB, CAROL]))
    receiver.reply("/dial-status", hangup())
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play = play_flow(
        simulator,
        tracking_number,
        answerers={
            ALICE: {"after": 8, "talkSeconds": 30},
            BOB: {"after": 3, "talkSeconds": 20},
            CAROL: "busy",
        },
    )

    by_number = {d["number"]: d for d in play["dials"]}
    assert {n: d["dialCallStatus"] for n, d in by_number.items()} == {
        ALICE: "canceled",
        BOB: "completed",
        CAROL: "busy",
    }
    last = finals(receiver)
    assert last[ALICE].params["CallStatus"] == "canceled"
    assert last[BOB].params["CallStatus"] == "completed"
    assert last[BOB].params["CallDuration"] == "20"
    assert last[CAROL].params["CallStatus"] == "busy"
    statuses = [
        r.params["CallStatus"]
        for r in receiver.received("/child-status")
        if r.params["To"] == ALICE
    ]
    assert statuses == ["initiated", "ringing", "canceled"]
    assert all(r.signature_valid for r in receiver.received())
    assert all(
        r.params["ParentCallSid"] == play["callSid"] for r in receiver.received("/child-status")
    )

    [action] = receiver.received("/dial-status")
    assert action.params["DialCallStatus"] == "completed"
    assert action.params["DialCallSid"] == by_number[BOB]["childCallSid"]
    assert action.params["DialBridged"] == "true"
    assert action.params["DialCallDuration"] == "20"

    children = simulator.client().calls.list(parent_call_sid=play["callSid"])
    assert sorted(c.status for c in children) == ["busy", "canceled", "completed"]


def test_when_nobody_answers_the_dial_reports_no_answer(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", ring(receiver, [ALICE, BOB], timeout=15))
    receiver.reply("/dial-status", hangup())
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play_flow(simulator, tracking_number, answerers={ALICE: "no-answer", BOB: "busy"})

    last = finals(receiver)
    assert (last[ALICE].params["CallStatus"], last[BOB].params["CallStatus"]) == (
        "no-answer",
        "busy",
    )
    [action] = receiver.received("/dial-status")
    assert action.params["DialCallStatus"] == "no-answer"
    assert action.params["DialBridged"] == "false"
    assert "DialCallDuration" not in action.params


def test_a_screened_leg_that_presses_1_hears_the_whisper_and_is_bridged(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", ring(receiver, [ALICE], answer_url="/answer?screen=1"))
    receiver.reply("/answer", screening(receiver))
    receiver.reply("/screen", str(VoiceResponse()))  # 1 accepted: the leg's TwiML ends
    receiver.reply("/dial-status", hangup())
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play = play_flow(
        simulator,
        tracking_number,
        answerers={ALICE: {"after": 4, "pressDigits": "1", "talkSeconds": 30}},
    )

    [child] = play["dials"]
    [answer] = receiver.received("/answer")
    assert answer.url.endswith("/answer?screen=1")
    assert answer.signature_valid
    assert answer.params["CallSid"] == child["childCallSid"]
    assert answer.params["ParentCallSid"] == play["callSid"]
    assert (answer.params["To"], answer.params["Direction"]) == (ALICE, "outbound-dial")
    [screen] = receiver.received("/screen")
    assert screen.params["Digits"] == "1"
    assert screen.params["CallSid"] == child["childCallSid"]

    [action] = receiver.received("/dial-status")
    assert (action.params["DialCallStatus"], action.params["DialBridged"]) == ("completed", "true")
    # The whisper and the prompt ran on the leg before the 30 s of talk.
    assert int(action.params["DialCallDuration"]) > 30
    assert child["bridged"] is True


def test_a_voicemail_box_that_picks_up_first_cancels_the_others_and_is_not_bridged(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", ring(receiver, [ALICE, BOB], timeout=25, answer_url="/answer"))
    receiver.reply("/answer", screening(receiver))
    receiver.reply("/dial-status", hangup())
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play = play_flow(
        simulator, tracking_number, answerers={ALICE: {"after": 20}, BOB: "voicemail-box"}
    )

    [answer] = receiver.received("/answer")
    assert answer.params["To"] == BOB
    assert receiver.received("/screen") == []  # the box pressed nothing: the Gather timed out
    last = finals(receiver)
    assert last[ALICE].params["CallStatus"] == "canceled"
    assert last[BOB].params["CallStatus"] == "completed"
    [action] = receiver.received("/dial-status")
    # Twilio reports the leg that picked up; only DialBridged tells nobody was connected.
    assert (action.params["DialCallStatus"], action.params["DialBridged"]) == (
        "completed",
        "false",
    )
    assert [d["bridged"] for d in play["dials"]] == [False, False]


def test_a_whisper_alone_is_said_then_the_parties_are_bridged(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    whisper = VoiceResponse()
    whisper.say("Call from the spring campaign")
    receiver.reply("/voice", ring(receiver, [ALICE], answer_url="/answer"))
    receiver.reply("/answer", str(whisper))
    receiver.reply("/dial-status", hangup())
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play_flow(simulator, tracking_number, answerers={ALICE: "voicemail-box"})

    assert len(receiver.received("/answer")) == 1
    [action] = receiver.received("/dial-status")
    assert action.params["DialBridged"] == "true"


def test_sequential_ringing_plays_the_next_dial_from_the_action(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", ring(receiver, [ALICE], action="/step-0"))
    receiver.reply("/step-0", ring(receiver, [BOB], action="/step-1"))
    receiver.reply("/step-1", hangup())
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play = play_flow(simulator, tracking_number, answerers={ALICE: "no-answer", BOB: {"after": 2}})

    assert [(d["number"], d["dialCallStatus"]) for d in play["dials"]] == [
        (ALICE, "no-answer"),
        (BOB, "completed"),
    ]
    [first] = receiver.received("/step-0")
    [second] = receiver.received("/step-1")
    assert first.params["DialCallStatus"] == "no-answer"
    assert (second.params["DialCallStatus"], second.params["DialBridged"]) == ("completed", "true")
    assert second.params["DialCallSid"] == play["dials"][1]["childCallSid"]


def voicemail_flow(receiver: WebhookReceiver) -> str:
    response = VoiceResponse()
    response.say("Nobody is available. Please leave a message.")
    response.record(
        max_length=60,
        play_beep=True,
        action=f"{receiver.base_url}/voicemail-done",
        recording_status_callback=f"{receiver.base_url}/recording-status",
        recording_status_callback_event="completed",
    )
    response.hangup()
    return str(response)


def test_a_voicemail_is_recorded_reported_and_served(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", ring(receiver, [ALICE]))
    receiver.reply("/dial-status", voicemail_flow(receiver))
    receiver.reply("/voicemail-done", hangup())
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play = play_flow(
        simulator, tracking_number, answerers={ALICE: "no-answer"}, voicemailSeconds=12
    )

    [recording] = receiver.received("/recording-status")
    assert recording.params["RecordingSource"] == "RecordVerb"
    assert recording.params["CallSid"] == play["callSid"]
    assert recording.params["RecordingDuration"] == "12"
    assert recording.params["RecordingSid"] in play["recordingSids"]
    url = recording.params["RecordingUrl"]
    assert url.startswith(
        f"{simulator.base_url}/2010-04-01/Accounts/{simulator.account_sid}/Recordings/RE"
    )
    [done] = receiver.received("/voicemail-done")
    assert (done.params["RecordingUrl"], done.params["RecordingDuration"]) == (url, "12")
    assert done.params["Digits"] == "hangup"
    media = requests.get(url, auth=(simulator.account_sid, simulator.auth_token), timeout=10)
    assert media.status_code == 200 and media.headers["Content-Type"] == "audio/x-wav"


def test_a_caller_who_hangs_up_at_the_beep_leaves_no_voicemail(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", ring(receiver, [ALICE]))
    receiver.reply("/dial-status", voicemail_flow(receiver))
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    play = play_flow(simulator, tracking_number, answerers={ALICE: "no-answer"})

    assert receiver.received("/recording-status") == []
    assert receiver.received("/voicemail-done") == []
    assert play["recordingSids"] == []


def test_bad_answerers_are_a_400_and_play_nothing(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    for answerers in (
        {"not-a-number": "busy"},
        {ALICE: "asleep"},
        {ALICE: {"after": -1}},
        {ALICE: {"pressDigits": "one"}},
        {ALICE: {"after": 3, "pressDigit": "1"}},
        ["busy"],
    ):
        reply = requests.post(
            f"{simulator.base_url}/sim/calls",
            json={"from": CALLER, "to": tracking_number, "answerers": answerers},
            timeout=10,
        )
        assert reply.status_code == 400, answerers
        assert reply.json()["error"]["code"] == "invalid_field"
    assert receiver.received() == []
