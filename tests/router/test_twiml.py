"""TwiML for routing decisions, read back as XML (pure: no I/O)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from services.router.routing import RoutingDecision
from services.router.twiml import build_twiml

BASE = "https://calls.example.com"
DISCLAIMER = "This call may be recorded for quality purposes."


def forwarded(**overrides: object) -> RoutingDecision:
    fields: dict[str, object] = {
        "phone_number": "+14155550100",
        "disposition": "forwarded",
        "client_id": "0b6f7d1c-3a55-4f0a-9a39-4d7b8e1f2a10",
        "forward_to": "+14155559999",
        "record": True,
        "recording_disclaimer": DISCLAIMER,
        "campaign": "spring-mailer",
    }
    fields.update(overrides)
    return RoutingDecision(**fields)  # type: ignore[arg-type]


def parse(decision: RoutingDecision, dial_timeout: int = 20) -> ET.Element:
    return ET.fromstring(build_twiml(decision, BASE, dial_timeout).encode())


def test_recorded_number_says_the_disclaimer_before_dialing() -> None:
    root = parse(forwarded())
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Say", "Dial"]
    assert root[0].text == DISCLAIMER


def test_recorded_dial_records_both_channels_and_reports_to_the_public_base() -> None:
    dial = parse(forwarded(), dial_timeout=25).find("Dial")
    assert dial is not None
    assert dial.attrib == {
        "action": f"{BASE}/api/twilio/dial-status",
        "method": "POST",
        "timeout": "25",
        "record": "record-from-answer-dual",
        "recordingStatusCallback": f"{BASE}/api/twilio/recording-status",
        "recordingStatusCallbackEvent": "completed",
    }


def test_dialed_number_reports_its_progress_as_one_space_separated_event_list() -> None:
    number = parse(forwarded()).find("Dial/Number")
    assert number is not None
    assert number.text == "+14155559999"
    assert number.attrib == {
        "statusCallback": f"{BASE}/api/twilio/status",
        "statusCallbackEvent": "initiated ringing answered completed",
    }


def test_unrecorded_number_dials_without_any_recording_attribute_or_disclaimer() -> None:
    root = parse(forwarded(record=False))
    assert [child.tag for child in root] == ["Dial"]
    dial = root[0]
    assert not any("record" in name.lower() for name in dial.attrib)
    assert dial.attrib["action"] == f"{BASE}/api/twilio/dial-status"
    number = dial.find("Number")
    assert number is not None and number.text == "+14155559999"


def test_recorded_number_without_disclaimer_goes_straight_to_dial() -> None:
    root = parse(forwarded(recording_disclaimer=None))
    assert [child.tag for child in root] == ["Dial"]
    assert root[0].attrib["record"] == "record-from-answer-dual"


def test_base_url_with_trailing_slash_yields_clean_callback_urls() -> None:
    twiml = build_twiml(forwarded(), BASE + "/", 20)
    dial = ET.fromstring(twiml.encode()).find("Dial")
    assert dial is not None
    assert dial.attrib["action"] == f"{BASE}/api/twilio/dial-status"


def test_disclaimer_with_markup_characters_is_escaped_not_injected() -> None:
    root = parse(forwarded(recording_disclaimer='Calls are <Hangup/> "recorded" & kept'))
    assert [child.tag for child in root] == ["Say", "Dial"]
    assert root[0].text == 'Calls are <Hangup/> "recorded" & kept'


def test_unassigned_number_hears_a_polite_message_then_hangup() -> None:
    root = parse(RoutingDecision(phone_number="+14155550100", disposition="unassigned"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text is not None and "not in service" in root[0].text
    assert root.find(".//Dial") is None
