"""Twilio-hosted twimlets as a number's fallback, answered by the simulator itself.

When a number's Voice URL fails, the simulator requests its Voice Fallback
URL as Twilio does; a fallback at twimlets.com (Forward, Message) is never
requested over the network: the simulator builds that TwiML itself. The
simulator in these tests has every outgoing request that is not local sent
to a proxy that does not exist, so a twimlet fetched over the network would
fail the call.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from services.twilio_sim.twimlets import UnknownTwimlet, is_twimlet, twimlet_twiml
from tests.support import free_port
from tests.twilio_sim.receiver import WebhookReceiver
from tests.twilio_sim.simulator import Simulator, running_simulator

CALLER = "+14155550123"
CLIENT_PHONE = "+12125550199"
FORWARD = "https://twimlets.com/forward?PhoneNumber=%2B12125550199"
NOT_IN_SERVICE = "https://twimlets.com/message?Message%5B0%5D=Not+in+service."


@pytest.fixture(scope="module")
def offline_simulator() -> Iterator[Simulator]:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    env = {
        "HTTP_PROXY": dead_proxy,
        "HTTPS_PROXY": dead_proxy,
        "http_proxy": dead_proxy,
        "https_proxy": dead_proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    with running_simulator(env=env) as sim:
        yield sim


@pytest.fixture
def edge(offline_simulator: Simulator) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(offline_simulator.auth_token) as server:
        yield server


def test_forward_twimlet_dials_its_phone_number() -> None:
    root = ET.fromstring(twimlet_twiml(FORWARD))
    dial = root.find("Dial")
    assert dial is not None
    assert [n.text for n in dial.findall("Number")] == [CLIENT_PHONE]


def test_forward_twimlet_keeps_its_timeout_and_caller_id() -> None:
    root = ET.fromstring(twimlet_twiml(FORWARD + "&Timeout=12&CallerId=%2B14155550100"))
    dial = root.find("Dial")
    assert dial is not None
    assert dial.get("timeout") == "12" and dial.get("callerId") == "+14155550100"


def test_message_twimlet_says_each_message_and_plays_urls() -> None:
    url = (
        "http://twimlets.com/message?Message%5B0%5D=Hello&Message%5B1%5D=https%3A%2F%2Fa.example"
        "%2Fb.mp3&Message%5B2%5D=Goodbye"
    )
    root = ET.fromstring(twimlet_twiml(url))
    assert [(e.tag, e.text) for e in root] == [
        ("Say", "Hello"),
        ("Play", "https://a.example/b.mp3"),
        ("Say", "Goodbye"),
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://twimlets.com/voicemail?Email=a%40example.com",
        "https://twimlets.com/forward",
        "https://twimlets.com/message",
    ],
)
def test_twimlets_not_simulated_or_incomplete_are_refused(url: str) -> None:
    with pytest.raises(UnknownTwimlet):
        twimlet_twiml(url)


def test_only_twilios_twimlet_hosts_are_twimlets() -> None:
    assert is_twimlet(FORWARD)
    assert is_twimlet("http://www.twimlets.com/message?Message=Hi#rc=2")
    assert not is_twimlet("https://twimlets.com.example.org/forward?PhoneNumber=1")
    assert not is_twimlet("https://calls.example.com/api/twilio/webhook")


def test_deployment_down_call_reaches_the_phone_through_the_forward_twimlet(
    offline_simulator: Simulator,
) -> None:
    number = "+15105553001"
    offline_simulator.own_number(
        number,
        f"http://127.0.0.1:{free_port()}/api/twilio/webhook",
        voiceFallbackUrl=FORWARD,
    )

    sid = offline_simulator.place_call(
        **{"from": CALLER, "to": number, "outcome": "completed", "talkSeconds": 40}
    )
    play = offline_simulator.wait_for_call(sid)

    assert play["error"] is None
    [voice, fallback] = play["callbacks"]
    assert voice["kind"] == "voice" and voice["status"] is None
    assert fallback["kind"] == "voice-fallback" and fallback["status"] == 200
    assert fallback["url"] == FORWARD and fallback["servedBy"].startswith("simulator")
    assert fallback["params"]["ErrorCode"] == "11205"
    [dial] = play["dials"]
    assert dial["number"] == CLIENT_PHONE
    assert dial["dialCallStatus"] == "completed" and dial["talkSeconds"] == 40
    assert play["result"]["callStatus"] == "completed"


def test_error_from_the_voice_url_falls_back_to_the_twimlet_and_callbacks_still_come(
    offline_simulator: Simulator, edge: WebhookReceiver
) -> None:
    number = "+15105553002"
    edge.reply("/voice", "bad gateway", status=502)
    offline_simulator.own_number(
        number,
        f"{edge.base_url}/voice",
        voiceFallbackUrl=FORWARD,
        statusCallback=f"{edge.base_url}/status",
    )

    sid = offline_simulator.place_call(**{"from": CALLER, "to": number, "outcome": "busy"})
    play = offline_simulator.wait_for_call(sid)

    assert [r.path for r in edge.received()] == ["/voice", "/status"]
    assert [cb["kind"] for cb in play["callbacks"]] == ["voice", "voice-fallback", "call-status"]
    assert play["callbacks"][1]["params"]["ErrorCode"] == "11200"
    assert [d["dialCallStatus"] for d in play["dials"]] == ["busy"]


def test_pooled_number_fallback_message_is_said_without_dialing(
    offline_simulator: Simulator,
) -> None:
    number = "+15105553003"
    offline_simulator.own_number(
        number, f"http://127.0.0.1:{free_port()}/voice", voiceFallbackUrl=NOT_IN_SERVICE
    )

    play = offline_simulator.wait_for_call(
        offline_simulator.place_call(**{"from": CALLER, "to": number})
    )

    assert play["dials"] == []
    [document] = play["twiml"]
    assert [(e.tag, e.text) for e in ET.fromstring(document["body"])] == [
        ("Say", "Not in service.")
    ]


def test_a_twimlet_the_simulator_does_not_play_is_an_application_error(
    offline_simulator: Simulator,
) -> None:
    number = "+15105553004"
    offline_simulator.own_number(
        number,
        f"http://127.0.0.1:{free_port()}/voice",
        voiceFallbackUrl="https://twimlets.com/voicemail?Email=owner%40example.com",
    )

    play = offline_simulator.wait_for_call(
        offline_simulator.place_call(**{"from": CALLER, "to": number})
    )

    fallback = play["callbacks"][1]
    assert fallback["status"] is None and "not simulated" in fallback["error"]
    assert play["dials"] == [] and play["twiml"] == []
