"""POST /internal/route over real PostgreSQL and Kafka: TwiML out, call.routed on the topic."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from switchboard import events
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.router.actions import (
    BASE,
    AppFactory,
    assign_number,
    create_client,
    route,
)
from tests.support import free_port
from tests.twilio_calls import new_call_sid

NUMBER = "+14155550100"
CLIENT_PHONE = "+14155559999"


def twiml_of(response: Any) -> ET.Element:
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    return ET.fromstring(response.data)


def routed_events(bootstrap: str, topics: Topics, call_sid: str) -> list[dict[str, Any]]:
    found = read_topic(bootstrap, topics.call_events, expect=1)
    return [m for m in found if m["key"] == call_sid]


def test_assigned_number_dials_the_client_and_publishes_call_routed(
    http: FlaskClient, kafka_bootstrap: str, topics: Topics
) -> None:
    client = create_client(http, forwardTo=CLIENT_PHONE)
    assign_number(
        http,
        client["id"],
        phoneNumber=NUMBER,
        recordingDisclaimer="This call is recorded.",
        campaign="spring-mailer",
    )
    call_sid = new_call_sid()

    root = twiml_of(route(http, call_sid, NUMBER, request_id="req-42"))

    assert [child.tag for child in root] == ["Say", "Dial"]
    dial = root[1]
    assert dial.attrib["record"] == "record-from-answer-dual"
    assert dial.attrib["action"] == f"{BASE}/api/twilio/dial-status"
    assert dial.attrib["timeout"] == "25"
    number = dial.find("Number")
    assert number is not None and number.text == CLIENT_PHONE

    [message] = routed_events(kafka_bootstrap, topics, call_sid)
    event = message["value"]
    events.validate(event)
    assert event["type"] == "call.routed"
    assert event["source"] == "router"
    assert event["callSid"] == call_sid
    assert event["clientId"] == client["id"]
    assert event["requestId"] == "req-42"
    assert event["data"] == {
        "phoneNumber": NUMBER,
        "disposition": "forwarded",
        "clientId": client["id"],
        "forwardTo": CLIENT_PHONE,
        "recording": True,
        "campaign": "spring-mailer",
        "flow": None,
        "inHours": True,
    }


def test_unknown_number_hears_polite_twiml_and_is_published_as_unassigned(
    http: FlaskClient, kafka_bootstrap: str, topics: Topics
) -> None:
    call_sid = new_call_sid()

    root = twiml_of(route(http, call_sid, "+14155550199"))

    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text is not None and "not in service" in root[0].text
    [message] = routed_events(kafka_bootstrap, topics, call_sid)
    event = message["value"]
    events.validate(event)
    assert "clientId" not in event
    assert "requestId" not in event
    assert event["data"]["disposition"] == "unassigned"
    assert event["data"]["phoneNumber"] == "+14155550199"
    assert event["data"]["recording"] is False


def test_unrecorded_number_dials_without_recording(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=CLIENT_PHONE)
    assign_number(http, client["id"], phoneNumber=NUMBER, record=False, recordingDisclaimer="x")

    root = twiml_of(route(http, new_call_sid(), NUMBER))

    assert [child.tag for child in root] == ["Dial"]
    assert "record" not in root[0].attrib
    assert "recordingStatusCallback" not in root[0].attrib


def test_call_without_call_sid_or_to_is_a_json_400(http: FlaskClient) -> None:
    for params in ({"To": NUMBER}, {"CallSid": new_call_sid()}, {"CallSid": " ", "To": NUMBER}):
        response = http.post("/internal/route", data=params)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "missing_field"


def test_routing_answers_from_memory_while_the_database_is_gone(
    router_app: Flask, http: FlaskClient
) -> None:
    client = create_client(http, forwardTo=CLIENT_PHONE)
    assign_number(http, client["id"], phoneNumber=NUMBER)
    runtime = runtime_of(router_app)
    runtime.store.close()

    assert runtime.table.reload(runtime.store.all_assignments) is False
    root = twiml_of(route(http, new_call_sid(), NUMBER))
    number = root.find("Dial/Number")
    assert number is not None and number.text == CLIENT_PHONE


def test_caller_is_served_when_kafka_is_unreachable(make_app: AppFactory) -> None:
    app = make_app(kafka_bootstrap=f"127.0.0.1:{free_port()}", publish_timeout_seconds=0.5)
    http = app.test_client()
    client = create_client(http, forwardTo=CLIENT_PHONE)
    assign_number(http, client["id"], phoneNumber=NUMBER)

    number = twiml_of(route(http, new_call_sid(), NUMBER)).find("Dial/Number")

    assert number is not None and number.text == CLIENT_PHONE


def test_route_endpoint_keeps_the_json_error_shape_for_bad_bodies(http: FlaskClient) -> None:
    form = {"CallSid": new_call_sid(), "To": NUMBER}
    cases = [
        (http.post("/internal/route", json=form), 415, "unsupported_media_type"),
        (
            http.post(
                "/internal/route",
                data=b"CallSid=CA1&To=%2B1415&x=" + b"a" * 70_000,
                content_type="application/x-www-form-urlencoded",
            ),
            413,
            "request_entity_too_large",
        ),
        (
            http.post(
                "/internal/route",
                data=b"CallSid=\xff\xfe&To=%2B14155550100",
                content_type="application/x-www-form-urlencoded",
            ),
            400,
            "bad_request",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status
        assert response.get_json()["error"]["code"] == code


def test_other_methods_and_paths_still_go_to_flask(http: FlaskClient) -> None:
    response = http.get("/internal/route")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert http.get("/healthz").get_json() == {"status": "ok"}


def sample(http: FlaskClient, line_start: str) -> float:
    """The value of the metrics sample whose line starts so (0 when there is none yet)."""
    for line in http.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_routed_calls_are_counted_and_timed_in_the_metrics(http: FlaskClient) -> None:
    # The counters are the test process's own, so compare before and after.
    labels = 'method="POST",route="/internal/route",service="router"'
    ok, bad = (f'http_requests_total{{{labels},status="{s}"}}' for s in (200, 400))
    timed = 'http_request_duration_seconds_count{route="/internal/route",service="router"}'
    before = [sample(http, name) for name in (ok, bad, timed)]

    route(http, new_call_sid(), NUMBER)
    http.post("/internal/route", data={"To": NUMBER})

    after = [sample(http, name) for name in (ok, bad, timed)]
    assert [b - a for a, b in zip(before, after, strict=True)] == [1.0, 1.0, 2.0]
