"""Inbound calls played by the simulator against a real webhook receiver.

The receiver checks every X-Twilio-Signature and answers TwiML like router
does (<Say>, then <Dial record action><Number statusCallback>); the tests
assert the callbacks Twilio's side sends for each outcome, in order.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import requests
from twilio.twiml.voice_response import VoiceResponse

from tests.twilio_sim.receiver import Received, WebhookReceiver
from tests.twilio_sim.simulator import Simulator

CALLER = "+14155550123"
CLIENT_PHONE = "+12125550199"
DIAL_TIMEOUT = 20


def hangup_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


HANGUP = hangup_twiml()


def forwarding_twiml(base: str, record: bool = True) -> str:
    response = VoiceResponse()
    response.say("This call may be recorded.")
    attributes: dict[str, object] = {
        "action": f"{base}/dial-status",
        "method": "POST",
        "timeout": DIAL_TIMEOUT,
    }
    if record:
        attributes.update(
            record="record-from-answer-dual",
            recording_status_callback=f"{base}/recording-status",
            recording_status_callback_event="completed",
        )
    dial = response.dial(**attributes)
    dial.number(
        CLIENT_PHONE,
        status_callback=f"{base}/status",
        status_callback_event="initiated ringing answered completed",
    )
    return str(response)


def forwarding_number(
    sim: Simulator, receiver: WebhookReceiver, number: str, record: bool = True
) -> None:
    receiver.reply("/voice", forwarding_twiml(receiver.base_url, record))
    receiver.reply("/dial-status", HANGUP)
    sim.own_number(
        number, f"{receiver.base_url}/voice", statusCallback=f"{receiver.base_url}/status"
    )


def paths(received: list[Received]) -> list[str]:
    return [r.path for r in received]


def child_callbacks(received: list[Received]) -> list[dict[str, str]]:
    return [r.params for r in received if r.path == "/status" and "ParentCallSid" in r.params]


def parent_status(received: list[Received]) -> dict[str, str]:
    [parent] = [
        r.params for r in received if r.path == "/status" and "ParentCallSid" not in r.params
    ]
    return parent


def test_answered_call_sends_twilio_callback_sequence_all_signed(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number)
    sid = simulator.place_call(
        **{
            "from": CALLER,
            "to": tracking_number,
            "outcome": "completed",
            "talkSeconds": 42,
            "ringSeconds": 7,
        }
    )
    play = simulator.wait_for_call(sid)
    got = receiver.received()

    assert play["error"] is None and play["alerts"] == []
    assert all(r.signature_valid for r in got)
    assert paths(got) == [
        "/voice",
        "/status",
        "/status",
        "/status",
        "/status",
        "/dial-status",
        "/recording-status",
        "/status",
    ]

    voice = got[0].params
    assert voice["CallSid"] == sid
    assert voice["AccountSid"] == simulator.account_sid
    assert voice["ApiVersion"] == "2010-04-01"
    assert (voice["Direction"], voice["CallStatus"]) == ("inbound", "ringing")
    assert (voice["From"], voice["Caller"], voice["To"], voice["Called"]) == (
        CALLER,
        CALLER,
        tracking_number,
        tracking_number,
    )
    assert (voice["FromCity"], voice["FromState"], voice["FromZip"], voice["FromCountry"]) == (
        "SAN FRANCISCO",
        "CA",
        "94103",
        "US",
    )
    assert voice["CallerCity"] == "SAN FRANCISCO"
    assert (voice["ToCity"], voice["CalledState"]) == ("OAKLAND", "CA")

    children = child_callbacks(got)
    assert [c["CallStatus"] for c in children] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [c["SequenceNumber"] for c in children] == ["0", "1", "2", "3"]
    child_sid = children[0]["CallSid"]
    assert child_sid != sid
    for child in children:
        assert child["ParentCallSid"] == sid
        assert child["CallSid"] == child_sid
        assert child["Direction"] == "outbound-dial"
        assert child["To"] == CLIENT_PHONE
        assert child["CallbackSource"] == "call-progress-events"
    assert children[-1]["CallDuration"] == "42"
    answered = parsedate_to_datetime(children[2]["Timestamp"])
    hung_up = parsedate_to_datetime(children[3]["Timestamp"])
    assert (hung_up - answered).total_seconds() == 42

    dial = got[5].params
    assert dial["CallSid"] == sid
    assert dial["DialCallStatus"] == "completed"
    assert dial["DialCallDuration"] == "42"
    assert dial["DialCallSid"] == child_sid
    assert dial["DialBridged"] == "true"

    recording = got[6].params
    assert recording["CallSid"] == sid
    assert recording["RecordingStatus"] == "completed"
    assert recording["RecordingDuration"] == "42"
    assert recording["RecordingChannels"] == "2"
    assert recording["RecordingSource"] == "DialVerb"
    assert recording["RecordingSid"].startswith("RE")
    assert recording["RecordingUrl"] == (
        f"{simulator.base_url}/2010-04-01/Accounts/{simulator.account_sid}"
        f"/Recordings/{recording['RecordingSid']}"
    )

    parent = parent_status(got)
    assert parent["CallSid"] == sid
    assert parent["CallStatus"] == "completed"
    assert parent["Direction"] == "inbound"
    assert int(parent["CallDuration"]) >= 42 + 7
    assert play["result"]["callStatus"] == "completed"
    assert play["dials"][0]["dialCallStatus"] == "completed"
    assert play["recordingSids"] == [recording["RecordingSid"]]


def test_unanswered_call_has_no_recording_and_parent_still_completes(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number)
    sid = simulator.place_call(**{"from": CALLER, "to": tracking_number, "outcome": "no-answer"})
    play = simulator.wait_for_call(sid)
    got = receiver.received()

    assert all(r.signature_valid for r in got)
    assert "/recording-status" not in paths(got)
    children = child_callbacks(got)
    assert [c["CallStatus"] for c in children] == ["initiated", "ringing", "no-answer"]
    assert children[-1]["CallDuration"] == "0"
    assert all(c["ParentCallSid"] == sid for c in children)
    [dial] = receiver.received("/dial-status")
    assert dial.params["DialCallStatus"] == "no-answer"
    assert dial.params["DialBridged"] == "false"
    assert "DialCallDuration" not in dial.params
    parent = parent_status(got)
    assert parent["CallStatus"] == "completed"
    assert int(parent["CallDuration"]) >= DIAL_TIMEOUT
    assert play["recordingSids"] == []


def test_busy_client_phone_is_reported_by_dial_status(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number)
    sid = simulator.place_call(**{"from": CALLER, "to": tracking_number, "outcome": "busy"})
    simulator.wait_for_call(sid)
    got = receiver.received()

    assert all(r.signature_valid for r in got)
    assert [c["CallStatus"] for c in child_callbacks(got)] == ["initiated", "busy"]
    [dial] = receiver.received("/dial-status")
    assert dial.params["DialCallStatus"] == "busy"
    assert "/recording-status" not in paths(got)
    assert parent_status(got)["CallStatus"] == "completed"


def test_phone_answering_after_the_dial_timeout_is_a_no_answer(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number)
    sid = simulator.place_call(
        **{
            "from": CALLER,
            "to": tracking_number,
            "outcome": "completed",
            "talkSeconds": 30,
            "ringSeconds": DIAL_TIMEOUT + 5,
        }
    )
    simulator.wait_for_call(sid)
    [dial] = receiver.received("/dial-status")
    assert dial.params["DialCallStatus"] == "no-answer"


def test_unrecorded_forward_sends_no_recording_callback(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number, record=False)
    sid = simulator.place_call(**{"from": CALLER, "to": tracking_number, "talkSeconds": 12})
    play = simulator.wait_for_call(sid)
    assert "/recording-status" not in paths(receiver.received())
    [dial] = receiver.received("/dial-status")
    assert dial.params["DialCallDuration"] == "12"
    assert play["recordingSids"] == []


def test_voice_fallback_url_is_used_when_voice_url_fails(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    receiver.reply("/voice", "boom", status=500)
    apology = VoiceResponse()
    apology.say("Sorry, please call again later.")
    apology.hangup()
    receiver.reply("/fallback", str(apology))
    simulator.own_number(
        tracking_number,
        f"{receiver.base_url}/voice",
        voiceFallbackUrl=f"{receiver.base_url}/fallback",
        statusCallback=f"{receiver.base_url}/status",
    )
    sid = simulator.place_call(**{"from": CALLER, "to": tracking_number})
    play = simulator.wait_for_call(sid)
    got = receiver.received()

    assert paths(got) == ["/voice", "/fallback", "/status"]
    assert all(r.signature_valid for r in got)
    fallback = got[1].params
    assert fallback["CallSid"] == sid
    assert fallback["ErrorCode"] == "11200"
    assert fallback["ErrorUrl"] == f"{receiver.base_url}/voice"
    assert [a["code"] for a in play["alerts"]] == [11200]
    assert got[2].params["CallStatus"] == "completed"


def test_say_and_hangup_completes_the_call_quickly(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    greeting = VoiceResponse()
    greeting.say("Thanks for calling.")
    greeting.hangup()
    receiver.reply("/voice", str(greeting))
    simulator.own_number(
        tracking_number, f"{receiver.base_url}/voice", statusCallback=f"{receiver.base_url}/status"
    )
    sid = simulator.place_call(**{"from": CALLER, "to": tracking_number})
    play = simulator.wait_for_call(sid)

    assert paths(receiver.received()) == ["/voice", "/status"]
    status = receiver.received("/status")[0].params
    assert status["CallStatus"] == "completed"
    assert 0 < int(status["CallDuration"]) <= 5
    assert play["dials"] == []


def test_missed_call_can_leave_a_voicemail_from_the_dial_action(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number, record=False)
    voicemail = VoiceResponse()
    voicemail.say("Please leave a message.")
    voicemail.record(
        action=f"{receiver.base_url}/voicemail",
        max_length=60,
        recording_status_callback=f"{receiver.base_url}/recording-status",
    )
    receiver.reply("/dial-status", str(voicemail))
    sid = simulator.place_call(
        **{"from": CALLER, "to": tracking_number, "outcome": "no-answer", "voicemailSeconds": 9}
    )
    play = simulator.wait_for_call(sid)
    got = receiver.received()

    assert all(r.signature_valid for r in got)
    assert paths(got)[-3:] == ["/voicemail", "/recording-status", "/status"]
    [message] = receiver.received("/voicemail")
    assert message.params["RecordingDuration"] == "9"
    [recording] = receiver.received("/recording-status")
    assert recording.params["CallSid"] == sid
    assert recording.params["RecordingSource"] == "RecordVerb"
    assert recording.params["RecordingChannels"] == "1"
    assert play["recordingSids"] == [recording.params["RecordingSid"]]


def test_number_bought_through_rest_receives_calls(
    simulator: Simulator, receiver: WebhookReceiver
) -> None:
    receiver.reply("/voice", HANGUP)
    bought = simulator.client().incoming_phone_numbers.create(
        area_code="303", voice_url=f"{receiver.base_url}/voice"
    )
    sid = simulator.place_call(**{"from": CALLER, "to": bought.phone_number})
    simulator.wait_for_call(sid)
    [voice] = receiver.received("/voice")
    assert voice.params["To"] == bought.phone_number
    assert voice.params["ToCity"] == "DENVER"


def test_call_to_a_number_the_account_does_not_own_is_404(simulator: Simulator) -> None:
    reply = requests.post(
        f"{simulator.base_url}/sim/calls", json={"from": CALLER, "to": "+19995550100"}, timeout=10
    )
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "unknown_number"


def test_bad_control_input_is_400_with_a_reason(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    bodies: list[dict[str, Any]] = [
        {"to": tracking_number},
        {"from": CALLER, "to": tracking_number, "outcome": "maybe"},
        {"from": CALLER, "to": tracking_number, "talkSeconds": "ten"},
        {"from": CALLER, "to": tracking_number, "ringSeconds": -1},
        {"from": CALLER, "to": tracking_number, "talkSeconds": True},
        {"from": CALLER, "to": tracking_number, "startedAt": "yesterday"},
    ]
    for body in bodies:
        reply = requests.post(f"{simulator.base_url}/sim/calls", json=body, timeout=10)
        assert reply.status_code == 400, body
        assert reply.json()["error"]["message"]
    reply = requests.post(
        f"{simulator.base_url}/sim/calls",
        data="[]",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert receiver.received() == []


def test_simulated_start_time_sets_callback_timestamps(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number, record=False)
    sid = simulator.place_call(
        **{
            "from": CALLER,
            "to": tracking_number,
            "talkSeconds": 10,
            "ringSeconds": 3,
            "startedAt": "2026-03-02T09:00:00Z",
        }
    )
    play = simulator.wait_for_call(sid)
    [initiated] = [
        c for c in child_callbacks(receiver.received()) if c["CallStatus"] == "initiated"
    ]
    assert parsedate_to_datetime(initiated["Timestamp"]).isoformat().startswith("2026-03-02T09:00:")
    assert play["simulatedStart"] == "2026-03-02T09:00:00Z"


def test_call_logs_are_listed_and_unknown_ones_are_404(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    forwarding_number(simulator, receiver, tracking_number)
    sid = simulator.place_call(**{"from": CALLER, "to": tracking_number, "talkSeconds": 5})
    play = simulator.wait_for_call(sid)
    assert [c["kind"] for c in play["callbacks"]] == [
        "voice",
        "child-status",
        "child-status",
        "child-status",
        "child-status",
        "dial-action",
        "recording-status",
        "call-status",
    ]
    assert all(c["status"] == 200 for c in play["callbacks"])
    assert play["twiml"][0]["url"] == f"{receiver.base_url}/voice"
    listed = requests.get(f"{simulator.base_url}/sim/calls", timeout=10).json()["calls"]
    assert sid in [c["callSid"] for c in listed]
    missing = requests.get(f"{simulator.base_url}/sim/calls/CA{'0' * 32}", timeout=10)
    assert missing.status_code == 404


def test_voice_url_requested_with_get_is_signed_over_its_query_string(
    simulator: Simulator, receiver: WebhookReceiver
) -> None:
    receiver.reply("/voice", HANGUP)
    client = simulator.client()
    bought = client.incoming_phone_numbers.create(
        area_code="305", voice_url=f"{receiver.base_url}/voice?campaign=spring", voice_method="GET"
    )
    sid = simulator.place_call(**{"from": CALLER, "to": bought.phone_number})
    simulator.wait_for_call(sid)
    [voice] = receiver.received("/voice")
    assert voice.method == "GET"
    assert voice.signature_valid
    assert voice.params["campaign"] == "spring"
    assert voice.params["CallSid"] == sid
