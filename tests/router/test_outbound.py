"""make-call requests and the TwiML URL they lead Twilio to (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from services.router.outbound import MAX_MESSAGE, MakeCall, TwimlRequest
from services.router.twiml import message_twiml
from switchboard.http import ApiError

CLIENT = "0b6f7d1c-3a55-4f0a-9a39-4d7b8e1f2a10"
GOOD = {
    "fromNumber": "+14155550100",
    "toNumber": "+14155559999",
    "clientId": CLIENT,
    "message": "Your table is ready & waiting <3",
}


def test_twiml_url_round_trips_through_the_twiml_endpoint_rules() -> None:
    call = MakeCall.parse(GOOD)
    url = urlsplit(call.twiml_url("https://calls.example.com/"))
    assert (url.scheme, url.netloc, url.path) == ("https", "calls.example.com", "/api/twilio/twiml")
    wanted = TwimlRequest.parse(dict(parse_qsl(url.query)))
    assert wanted == TwimlRequest(CLIENT, GOOD["message"])


@pytest.mark.parametrize(
    "change",
    [
        {"fromNumber": "4155550100"},
        {"fromNumber": 4155550100},
        {"toNumber": "555-0100"},
        {"toNumber": "+14155550100"},
        {"clientId": "acme"},
        {"clientId": 7},
        {"message": ""},
        {"message": "   "},
        {"message": "x" * (MAX_MESSAGE + 1)},
        {"message": "bell \x07"},
        {"message": ["hi"]},
        {"extra": 1},
    ],
)
def test_bad_make_call_is_a_400(change: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as caught:
        MakeCall.parse({**GOOD, **change})
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"clientId": CLIENT},
        {"message": "hi"},
        {"clientId": "x", "message": "hi"},
        {"clientId": CLIENT, "message": "x" * (MAX_MESSAGE + 1)},
    ],
)
def test_twiml_parameters_are_validated(args: dict[str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        TwimlRequest.parse(args)
    assert caught.value.status == 400


def test_twiml_endpoint_ignores_twilio_own_parameters() -> None:
    args = {"clientId": CLIENT, "message": "hi", "CallSid": "CA1", "AccountSid": "AC1"}
    assert TwimlRequest.parse(args).message == "hi"


def test_message_twiml_says_the_disclaimer_first_when_there_is_one() -> None:
    root = ET.fromstring(message_twiml("Hello <you> & yours", "Recorded."))
    assert [(e.tag, e.text) for e in root] == [("Say", "Recorded."), ("Say", "Hello <you> & yours")]
    root = ET.fromstring(message_twiml("Hello", None))
    assert [(e.tag, e.text) for e in root] == [("Say", "Hello")]


def test_from_number_may_be_omitted_for_the_accounts_main_number() -> None:
    body = {k: v for k, v in GOOD.items() if k != "fromNumber"}
    assert MakeCall.parse(body).from_number is None
    assert MakeCall.parse({**body, "fromNumber": None}).from_number is None
