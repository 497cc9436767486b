"""The guide's Twilio endpoints, through the twilio library against the simulator.

GET/POST /api/twilio/purchase-number list and buy numbers (bought numbers
call this deployment and wait in the pool); POST /api/twilio/make-call places
an outbound call whose TwiML Twilio fetches from GET /api/twilio/twiml, and
publishes `call.placed` so analytics counts it as the client's outbound call.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from switchboard import events
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.router.actions import (
    ADMIN_TOKEN,
    AUTH,
    BASE,
    AppFactory,
    LiveRouter,
    assign_number,
    audit_entries,
    bearer,
    create_client,
    issue_key,
    route,
)
from tests.router.conftest import twilio_settings
from tests.support import free_port
from tests.twilio_calls import new_call_sid, sign
from tests.twilio_sim.simulator import Simulator

PHONE = "+14155559999"
CALLEE = "+13125550123"
# The auth token Twilio signs the TwiML fetch with (the apps made by these tests).
TWIML_TOKEN = "twiml-test-auth-token"


def test_available_numbers_are_listed_in_the_guides_shape(twilio_http: FlaskClient) -> None:
    response = twilio_http.get(
        "/api/twilio/purchase-number",
        query_string={"areaCode": "415", "limit": 3},
        headers=AUTH,
    )
    assert response.status_code == 200
    numbers = response.get_json()["numbers"]
    assert len(numbers) == 3
    for number in numbers:
        assert set(number) == {"phoneNumber", "locality", "region"}
        assert number["phoneNumber"].startswith("+1415")
        assert number["region"] == "CA"


@pytest.mark.parametrize(
    "query",
    [{"areaCode": "41"}, {"areaCode": "abc"}, {"limit": "0"}, {"limit": "31"}, {"area": "415"}],
)
def test_bad_search_is_a_400(twilio_http: FlaskClient, query: dict[str, str]) -> None:
    response = twilio_http.get("/api/twilio/purchase-number", query_string=query, headers=AUTH)
    assert response.status_code == 400


def test_bought_number_calls_this_deployment_and_waits_in_the_pool(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    response = twilio_http.post(
        "/api/twilio/purchase-number", json={"areaCode": "415"}, headers=AUTH
    )

    assert response.status_code == 201
    bought = response.get_json()
    assert bought["phoneNumber"].startswith("+1415") and bought["sid"].startswith("PN")
    owned = simulator.client().incoming_phone_numbers(bought["sid"]).fetch()
    assert owned.phone_number == bought["phoneNumber"]
    assert owned.voice_url == "https://calls.example.com/api/twilio/webhook"
    assert owned.voice_method == "POST"
    assert owned.status_callback == "https://calls.example.com/api/twilio/status"
    assert owned.voice_fallback_url.startswith("https://twimlets.com/message?")
    pooled = twilio_http.get(
        "/api/twilio/numbers", query_string={"status": "pooled"}, headers=AUTH
    ).get_json()["numbers"]
    assert [(n["phoneNumber"], n["sid"]) for n in pooled] == [
        (bought["phoneNumber"], bought["sid"])
    ]
    assert (
        "not in service" in route(twilio_http, new_call_sid(), bought["phoneNumber"]).data.decode()
    )
    [entry] = audit_entries(twilio_http, action="number.purchased")
    assert entry["actor"] == "admin" and entry["details"]["sid"] == bought["sid"]


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({}, 503, "twilio_not_configured"),
        ({"twilio_auth_token": "wrong"}, 502, "twilio_error"),
        ({"twilio_api_base_url": f"http://127.0.0.1:{free_port()}"}, 502, "twilio_unreachable"),
    ],
)
def test_twilio_trouble_is_a_clear_error_that_writes_nothing(
    make_app: AppFactory,
    simulator: Simulator,
    overrides: dict[str, Any],
    status: int,
    code: str,
) -> None:
    settings = {**twilio_settings(simulator), **overrides} if overrides else {}
    app = make_app(**settings)
    http = app.test_client()
    response = http.post("/api/twilio/purchase-number", json={"areaCode": "415"}, headers=AUTH)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert runtime_of(app).store.owned_numbers() == []
    assert audit_entries(http) == []


@pytest.mark.parametrize(
    "body",
    [
        {"areaCode": "12"},
        {"areaCode": "415", "phoneNumber": "+14155550100"},
        [],
        {"areaCode": ["415"]},
    ],
)
def test_bad_purchase_is_a_400(twilio_http: FlaskClient, body: Any) -> None:
    response = twilio_http.post("/api/twilio/purchase-number", json=body, headers=AUTH)
    assert response.status_code == 400


def placed_events(bootstrap: str, topics: Topics, call_sid: str) -> list[dict[str, Any]]:
    found = read_topic(bootstrap, topics.call_events, expect=1)
    return [m["value"] for m in found if m["key"] == call_sid]


def make_call(url: str, headers: dict[str, str], **body: Any) -> requests.Response:
    return requests.post(f"{url}/api/twilio/make-call", json=body, headers=headers, timeout=10)


def test_make_call_places_the_call_and_twilio_hears_disclaimer_then_message(
    live_router: LiveRouter, kafka_bootstrap: str, topics: Topics
) -> None:
    http = live_router.app.test_client()
    client = create_client(http, forwardTo=PHONE, recordingDisclaimer="This call is recorded.")
    number = assign_number(http, client["id"], areaCode="415", campaign="follow-up")
    sim = live_router.simulator

    # The guide's curl example, over HTTP, with the auth header added.
    response = make_call(
        live_router.url,
        {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        fromNumber=number["phoneNumber"],
        toNumber=CALLEE,
        clientId=client["id"],
        message="Your order is ready.",
    )

    assert response.status_code == 201, response.text
    call_sid = response.json()["callSid"]
    play = sim.wait_for_call(call_sid)
    assert play["direction"] == "outbound-api" and play["error"] is None
    [document] = play["twiml"]
    says = [e.text for e in ET.fromstring(document["body"])]
    assert says == ["This call is recorded.", "Your order is ready."]
    assert document["url"].startswith(f"{live_router.url}/api/twilio/twiml?")
    assert play["recordingSids"], "a recording client's outbound call is recorded"
    call = sim.client().calls(call_sid).fetch()
    assert (call._from, call.to) == (number["phoneNumber"], CALLEE)

    [event] = placed_events(kafka_bootstrap, topics, call_sid)
    events.validate(event)
    assert event["type"] == "call.placed"
    assert event["callSid"] == call_sid and event["clientId"] == client["id"]
    assert event["data"] == {
        "fromNumber": number["phoneNumber"],
        "toNumber": CALLEE,
        "clientId": client["id"],
        "direction": "outbound",
        "recording": True,
        "campaign": "follow-up",
    }
    [entry] = audit_entries(http, action="call.placed")
    assert entry["targetId"] == call_sid


def test_client_that_does_not_record_gets_no_disclaimer_and_no_recording(
    live_router: LiveRouter,
) -> None:
    http = live_router.app.test_client()
    client = create_client(http, forwardTo=PHONE, recordingEnabled=False)
    number = assign_number(http, client["id"], areaCode="415")
    key = issue_key(http, client["id"])["key"]

    response = make_call(
        live_router.url,
        bearer(key),
        fromNumber=number["phoneNumber"],
        toNumber=CALLEE,
        clientId=client["id"],
        message="Hello there.",
    )

    assert response.status_code == 201, response.text
    play = live_router.simulator.wait_for_call(response.json()["callSid"])
    assert [e.text for e in ET.fromstring(play["twiml"][0]["body"])] == ["Hello there."]
    assert play["recordingSids"] == []


MAIN_NUMBER = "+14155550111"


def test_the_accounts_main_number_calls_for_any_client_and_is_the_default(
    make_app: AppFactory, simulator: Simulator
) -> None:
    """The guide's make-call example calls from TWILIO_PHONE_NUMBER, not a client's number."""
    http = make_app(main_number=MAIN_NUMBER, **twilio_settings(simulator)).test_client()
    client = create_client(http, forwardTo=PHONE)
    request = {"toNumber": CALLEE, "clientId": client["id"], "message": "Hello"}

    named = http.post(
        "/api/twilio/make-call", json={**request, "fromNumber": MAIN_NUMBER}, headers=AUTH
    )
    omitted = http.post("/api/twilio/make-call", json=request, headers=AUTH)

    for response in (named, omitted):
        assert response.status_code == 201, response.get_json()
        call = simulator.client().calls(response.get_json()["callSid"]).fetch()
        assert (call._from, call.to) == (MAIN_NUMBER, CALLEE)
    placed = [e["targetId"] for e in audit_entries(http, action="call.placed")]
    assert sorted(placed) == sorted(r.get_json()["callSid"] for r in (named, omitted))


def test_without_a_main_number_make_call_needs_a_from_number(
    twilio_app: Flask, simulator: Simulator
) -> None:
    http = twilio_app.test_client()
    client = create_client(http, forwardTo=PHONE)
    response = http.post(
        "/api/twilio/make-call",
        json={"toNumber": CALLEE, "clientId": client["id"], "message": "Hello"},
        headers=AUTH,
    )
    assert response.status_code == 400
    assert "TWILIO_PHONE_NUMBER" in response.get_json()["error"]["message"]
    assert audit_entries(http, action="call.placed") == []


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"fromNumber": "+14155550999"}, 404),
        ({"toNumber": "5550123"}, 400),
        ({"message": ""}, 400),
        ({"message": "x" * 1001}, 400),
        ({"clientId": "not-a-uuid"}, 400),
        ({"color": "red"}, 400),
    ],
)
def test_bad_make_call_is_refused_before_twilio_is_asked(
    twilio_app: Flask, simulator: Simulator, change: dict[str, Any], status: int
) -> None:
    http = twilio_app.test_client()
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber="+14155550100")
    calls_before = len(simulator.client().calls.list(to=CALLEE))
    body = {
        "fromNumber": "+14155550100",
        "toNumber": CALLEE,
        "clientId": client["id"],
        "message": "hi",
        **change,
    }

    response = http.post("/api/twilio/make-call", json=body, headers=AUTH)

    assert response.status_code == status
    assert len(simulator.client().calls.list(to=CALLEE)) == calls_before
    assert audit_entries(http, action="call.placed") == []


def twiml_get(http: FlaskClient, query: dict[str, str], token: str = TWIML_TOKEN) -> Any:
    """GET /api/twilio/twiml as Twilio fetches it: signed over the public URL."""
    url = f"{BASE}/api/twilio/twiml" + (f"?{urlencode(query)}" if query else "")
    return http.get(url, headers={"X-Twilio-Signature": sign(token, url, {})})


def test_twiml_endpoint_validates_its_parameters(make_app: AppFactory) -> None:
    http = make_app(twilio_account_sid="AC" + "0" * 32, twilio_auth_token=TWIML_TOKEN).test_client()
    client = create_client(http, recordingDisclaimer="Recorded.")
    good = {"clientId": client["id"], "message": "Hi & bye"}
    url = f"{BASE}/api/twilio/twiml?{urlencode(good)}"
    posted = {"CallSid": new_call_sid(), "CallStatus": "in-progress"}
    for response in (
        twiml_get(http, good),
        http.post(url, data=posted, headers={"X-Twilio-Signature": sign(TWIML_TOKEN, url, posted)}),
    ):
        assert response.status_code == 200 and response.mimetype == "text/xml"
        assert [e.text for e in ET.fromstring(response.data)] == ["Recorded.", "Hi & bye"]
    for query, status in (
        ({}, 400),
        ({"clientId": client["id"]}, 400),
        ({**good, "message": "x" * 1001}, 400),
        ({**good, "clientId": "00000000-0000-0000-0000-000000000000"}, 404),
    ):
        response = twiml_get(http, query)
        assert response.status_code == status
        assert response.get_json()["error"]["message"]


def test_twiml_endpoint_serves_only_what_twilio_signed(
    make_app: AppFactory, http: FlaskClient
) -> None:
    signed = make_app(twilio_account_sid="AC" + "0" * 32, twilio_auth_token=TWIML_TOKEN)
    client = create_client(signed.test_client(), recordingDisclaimer="Recorded.")
    good = {"clientId": client["id"], "message": "Wire $500 to ..."}
    unsigned = signed.test_client().get("/api/twilio/twiml", query_string=good)
    forged = twiml_get(signed.test_client(), good, token="not-the-auth-token")
    # Without an auth token router cannot check a signature, so it serves nothing.
    untokened = twiml_get(http, good)
    for response in (unsigned, forged, untokened):
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "invalid_signature"
    # Development may turn the check off, as for ingress.
    open_app = make_app(validate_signatures=False).test_client()
    assert open_app.get("/api/twilio/twiml", query_string=good).status_code == 200
