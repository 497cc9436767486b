"""The TwiML of each call-flow step, read back as XML (pure; router and ingress serve it)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from switchboard.callflow import Flow, RoutingDecision
from switchboard.callflow_twiml import (
    after_dial_twiml,
    answer_twiml,
    dial_step,
    incoming_twiml,
    leg_whisper,
    next_step_twiml,
    screen_twiml,
    voicemail_done_twiml,
)

BASE = "https://edge.example.com/"
NUMBER = "+14155550100"
TARGETS = [
    {"number": "+14155550101", "timeoutSec": 15},
    {"number": "+14155550102", "timeoutSec": 25},
    {"number": "+14155550103"},
]
DECISION = RoutingDecision(
    phone_number=NUMBER,
    disposition="forwarded",
    client_id="c1",
    forward_to="+14155559999",
    record=True,
    recording_disclaimer="This call may be recorded.",
    campaign="mailer",
)


def flow(**body: Any) -> Flow:
    return Flow.read(body)


def xml(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    return root


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_simultaneous_ringing_is_one_dial_with_every_number() -> None:
    root = xml(
        incoming_twiml(DECISION, flow(ring={"targets": TARGETS}), True, BASE, dial_timeout=20)
    )
    say, dial = list(root)
    assert say.tag == "Say" and say.text == "This call may be recorded."
    assert dial.tag == "Dial"
    assert [n.text for n in dial.findall("Number")] == [t["number"] for t in TARGETS]
    # All ring at once: the <Dial> waits as long as the most patient target.
    assert dial.get("timeout") == "25"
    assert dial.get("record") == "record-from-answer-dual"
    assert dial.get("action", "").startswith("https://edge.example.com/api/twilio/dial-status?")
    assert query(dial.get("action", ""))["flowStep"] == ["0"]
    for number in dial.findall("Number"):
        assert number.get("url") is None
        assert number.get("statusCallback") == "https://edge.example.com/api/twilio/status"


def test_sequential_ringing_dials_the_first_target_with_its_own_timeout() -> None:
    sequential = flow(ring={"strategy": "sequential", "targets": TARGETS})
    root = xml(incoming_twiml(DECISION, sequential, True, BASE, dial_timeout=20))
    (dial,) = root.findall("Dial")
    assert [n.text for n in dial.findall("Number")] == ["+14155550101"]
    assert dial.get("timeout") == "15"


@pytest.mark.parametrize(
    ("status", "bridged", "next_number", "timeout"),
    [
        ("no-answer", None, "+14155550102", "25"),
        ("busy", None, "+14155550102", "25"),
        ("failed", None, "+14155550102", "25"),
        # Picked up but did not press 1: the leg was never bridged.
        ("completed", "false", "+14155550102", "25"),
    ],
)
def test_sequential_ringing_moves_on_when_the_target_did_not_take_the_call(
    status: str, bridged: str | None, next_number: str, timeout: str
) -> None:
    sequential = flow(ring={"strategy": "sequential", "targets": TARGETS})
    root = xml(after_dial_twiml(DECISION, sequential, 0, status, bridged, BASE, 20))
    (dial,) = root.findall("Dial")
    assert [n.text for n in dial.findall("Number")] == [next_number]
    assert dial.get("timeout") == timeout
    assert query(dial.get("action", ""))["flowStep"] == ["1"]
    assert root.find("Say") is None  # the disclaimer was said once, at the start


@pytest.mark.parametrize(("status", "bridged"), [("completed", "true"), ("answered", None)])
def test_a_call_someone_took_ends_after_the_dial(status: str, bridged: str | None) -> None:
    sequential = flow(ring={"strategy": "sequential", "targets": TARGETS})
    root = xml(after_dial_twiml(DECISION, sequential, 0, status, bridged, BASE, 20))
    assert [child.tag for child in root] == ["Hangup"]


def test_when_the_last_target_does_not_answer_the_caller_gets_voicemail() -> None:
    sequential = flow(
        ring={"strategy": "sequential", "targets": TARGETS},
        voicemail={"greeting": "Leave a message", "maxLengthSec": 90},
    )
    root = xml(after_dial_twiml(DECISION, sequential, 2, "no-answer", None, BASE, 20))
    assert [child.tag for child in root] == ["Say", "Record", "Hangup"]
    assert root.findtext("Say") == "Leave a message"
    record = root.find("Record")
    assert record is not None
    assert record.get("maxLength") == "90"
    assert record.get("playBeep") == "true"
    assert record.get("recordingStatusCallback") == (
        "https://edge.example.com/api/twilio/recording-status"
    )
    assert record.get("action") == "https://edge.example.com/api/twilio/flow/voicemail-done"


def test_simultaneous_ringing_nobody_answers_goes_to_the_after_hours_forward() -> None:
    forwarding = flow(
        ring={"targets": TARGETS}, afterHours="forward", afterHoursNumber="+14155550199"
    )
    root = xml(after_dial_twiml(DECISION, forwarding, 0, "no-answer", None, BASE, 20))
    (dial,) = root.findall("Dial")
    assert [n.text for n in dial.findall("Number")] == ["+14155550199"]
    assert query(dial.get("action", ""))["flowStep"] == ["forward"]


def test_after_hours_the_call_goes_to_voicemail_after_the_disclaimer() -> None:
    hours = {"weekly": {"mon": [["09:00", "17:00"]]}}
    root = xml(incoming_twiml(DECISION, flow(businessHours=hours), False, BASE, 20))
    assert [child.tag for child in root] == ["Say", "Say", "Record", "Hangup"]
    assert root.findall("Say")[1].text == Flow().voicemail.greeting
    assert root.find("Dial") is None


def test_after_hours_forward_dials_the_after_hours_number() -> None:
    forwarding = flow(afterHours="forward", afterHoursNumber="+14155550199")
    root = xml(incoming_twiml(DECISION, forwarding, False, BASE, 20))
    (dial,) = root.findall("Dial")
    assert [n.text for n in dial.findall("Number")] == ["+14155550199"]
    assert root.find("Record") is None


def test_a_flow_without_targets_rings_the_numbers_forward_to() -> None:
    root = xml(incoming_twiml(DECISION, flow(screening=True), True, BASE, dial_timeout=30))
    (dial,) = root.findall("Dial")
    assert [n.text for n in dial.findall("Number")] == ["+14155559999"]
    assert dial.get("timeout") == "30"


def test_whisper_and_screening_run_on_the_answering_leg_through_number_url() -> None:
    screened = flow(ring={"targets": TARGETS}, whisper="Call from {campaign}", screening=True)
    dial = xml(incoming_twiml(DECISION, screened, True, BASE, 20)).find("Dial")
    assert dial is not None
    urls = {n.get("url") for n in dial.findall("Number")}
    (url,) = urls
    assert url is not None and url.startswith("https://edge.example.com/api/twilio/flow/answer?")
    assert query(url) == {"whisper": ["Call from mailer"], "screen": ["1"]}

    leg = xml(answer_twiml("Call from mailer", True, BASE))
    assert [child.tag for child in leg] == ["Say", "Gather", "Hangup"]
    assert leg.findtext("Say") == "Call from mailer"
    gather = leg.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.findtext("Say") == "Press 1 to accept this call."
    assert gather.get("action") == "https://edge.example.com/api/twilio/flow/screen"


def test_a_whisper_alone_is_said_and_the_leg_is_bridged() -> None:
    no_campaign = RoutingDecision(NUMBER, "forwarded", "c1", "+14155559999", campaign=None)
    dial = xml(incoming_twiml(no_campaign, flow(whisper="Call from {campaign}"), True, BASE, 20))
    number = dial.find("Dial/Number")
    assert number is not None
    assert query(number.get("url", "")) == {"whisper": ["Call from no campaign"]}
    leg = xml(answer_twiml("Call from no campaign", False, BASE))
    assert [child.tag for child in leg] == ["Say"]
    assert leg.findtext("Say") == "Call from no campaign"


@pytest.mark.parametrize(("digits", "bridged"), [("1", True), ("2", False), ("", False)])
def test_screening_bridges_only_on_1(digits: str, bridged: bool) -> None:
    leg = xml(screen_twiml(digits))
    assert [child.tag for child in leg] == ([] if bridged else ["Hangup"])


def test_a_voicemail_ends_with_a_hangup() -> None:
    assert [child.tag for child in xml(voicemail_done_twiml())] == ["Hangup"]


def test_an_unrecorded_number_dials_without_recording() -> None:
    unrecorded = RoutingDecision(NUMBER, "forwarded", "c1", "+14155559999", record=False)
    root = xml(incoming_twiml(unrecorded, flow(ring={"targets": TARGETS}), True, BASE, 20))
    dial = root.find("Dial")
    assert root.find("Say") is None
    assert dial is not None and dial.get("record") is None


def test_what_follows_a_dial_is_the_next_target_or_a_hangup_when_nothing_follows() -> None:
    sequential = flow(ring={"strategy": "sequential", "targets": TARGETS})
    with_flow = RoutingDecision(NUMBER, "forwarded", "c1", "+14155559999", flow=sequential)
    following = xml(next_step_twiml(with_flow, 0, "no-answer", None, BASE, 20)).find("Dial")
    assert following is not None
    assert [n.text for n in following.findall("Number")] == ["+14155550102"]
    without_flow = RoutingDecision(NUMBER, "forwarded", "c1", "+14155559999")
    released = RoutingDecision(NUMBER, "unassigned")
    for decision, step in ((with_flow, None), (without_flow, 0), (released, 0)):
        ended = xml(next_step_twiml(decision, step, "no-answer", None, BASE, 20))
        assert [c.tag for c in ended] == ["Hangup"]


@pytest.mark.parametrize(("raw", "step"), [("0", 0), ("9", 9), ("forward", None)])
def test_a_dial_step_is_a_target_index_or_the_forward(raw: str, step: int | None) -> None:
    assert dial_step(raw) == step


@pytest.mark.parametrize("raw", ["", "ten", "10", "-1", "٣"])
def test_a_bad_dial_step_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="flowStep"):
        dial_step(raw)


def test_a_whisper_from_the_answer_url_loses_what_twiml_cannot_carry() -> None:
    assert leg_whisper("Hi\x00there ") == "Hithere"
    assert leg_whisper("  ") is None and leg_whisper(None) is None
    assert leg_whisper("x" * 2000) == "x" * 1000
