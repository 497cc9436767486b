"""ingress on a real Kafka broker with router down: answers from its copy of the number events.

Router's own builders publish the number events on the test's number-events
topic; nothing listens on router's port, so every call is answered by
ingress alone: a known number with its flow (and the `call.routed` fact), a
released one as not in service, and only a number ingress never saw with the
apology. A flow's later steps and its legs' TwiML are answered here too.
"""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from services.ingress.app import runtime_of
from services.ingress.config import Config
from services.router import facts
from services.router.dialing import DialPolicy
from services.router.directory import NumberAssignment
from services.router.flows import DAYS, Flow
from switchboard import events
from switchboard.kafka import EventProducer, Topics
from tests.ingress.test_app import BASE, TOKEN, make_client, make_config, post
from tests.kafka_read import read_topic
from tests.support import free_port, wait_until
from tests.twilio_calls import ForwardedCall, Webhook, sign

__all__ = ["make_client"]  # the fixture, shared with test_app.py

KNOWN = "+14155550100"
RELEASED = "+14155550111"
NEVER_SEEN = "+14155550122"
TARGETS = [{"number": "+14155550101", "timeoutSec": 15}, {"number": "+14155550102"}]
ALWAYS_OPEN = {"weekly": {day: [["00:00", "24:00"]] for day in DAYS}}


def assignment(number: str, flow: dict[str, Any] | None) -> NumberAssignment:
    return NumberAssignment(
        number,
        "c1",
        "+14155559999",
        True,
        "This call may be recorded.",
        "mailer",
        datetime(2026, 1, 1, tzinfo=UTC),
        "America/New_York",
        None if flow is None else Flow.parse(flow, number, DialPolicy()),
    )


def publish_numbers(bootstrap: str, topics: Topics, flow: dict[str, Any]) -> None:
    """KNOWN with `flow`; RELEASED assigned, then released (router's builders, keyed by number)."""
    producer = EventProducer(bootstrap)
    try:
        for number, event in (
            (KNOWN, facts.number_assigned(assignment(KNOWN, flow))),
            (RELEASED, facts.number_assigned(assignment(RELEASED, None))),
            (
                RELEASED,
                facts.number_released(assignment(RELEASED, None), datetime.now(UTC)),
            ),
        ):
            producer.publish(topics.number_events, event, key=number, timeout=10)
    finally:
        producer.close()


@pytest.fixture
def router_down(tmp_path: Path, kafka_bootstrap: str, topics: Topics) -> Config:
    """ingress's settings with nothing listening where router should be."""
    config = make_config(kafka_bootstrap, topics, tmp_path, f"http://127.0.0.1:{free_port()}")
    # A worker starts serving only once its copy is built, as under `switchboard ingress`.
    return replace(config, copy_wait=15.0)


Start = Callable[[dict[str, Any]], FlaskClient]


@pytest.fixture
def ingress_alone(
    kafka_bootstrap: str,
    topics: Topics,
    router_down: Config,
    make_client: Callable[[Config], FlaskClient],
) -> Start:
    """Publish the numbers (KNOWN with the flow given), then start ingress with router down."""

    def start(flow: dict[str, Any]) -> FlaskClient:
        publish_numbers(kafka_bootstrap, topics, flow)
        return make_client(router_down)

    return start


def xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def call_events(bootstrap: str, topics: Topics, call_sid: str, expect: int) -> list[str]:
    found = read_topic(bootstrap, topics.call_events, expect=expect)
    for message in found:
        events.validate(message["value"])
    return sorted(m["value"]["type"] for m in found if m["key"] == call_sid)


def test_a_known_number_is_forwarded_with_its_flow_while_router_is_down(
    kafka_bootstrap: str, topics: Topics, ingress_alone: Start
) -> None:
    flow = {
        "businessHours": ALWAYS_OPEN,
        "ring": {"strategy": "simultaneous", "targets": TARGETS},
        "whisper": "Call from {campaign}",
        "screening": True,
    }
    client = ingress_alone(flow)
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["routingCopy"] == {"built": True, "numbers": 2}

    call = ForwardedCall(to=KNOWN, forward_to="+14155550101")
    reply = post(client, call.incoming())
    assert reply.status_code == 200
    root = xml(reply.data)
    assert root.findtext("Say") == "This call may be recorded."
    numbers = root.findall("Dial/Number")
    assert [n.text for n in numbers] == ["+14155550101", "+14155550102"]
    assert call_events(kafka_bootstrap, topics, call.call_sid, expect=2) == [
        "call.received",
        "call.routed",
    ]
    routed = [
        m["value"]
        for m in read_topic(kafka_bootstrap, topics.call_events, expect=2)
        if m["value"]["type"] == "call.routed"
    ]
    assert routed[0]["source"] == "ingress" and routed[0]["data"]["disposition"] == "forwarded"

    # The answering leg hears the whisper and must press 1, all from ingress.
    leg_url = numbers[0].get("url", "")
    parts = urlsplit(leg_url)
    assert leg_url.startswith(BASE)
    leg_path = f"{parts.path}?{parts.query}"
    leg_form = {"CallSid": call.child_sid, "AccountSid": "AC" + "0" * 32}
    unsigned = client.post(leg_path, data=leg_form, headers={"X-Twilio-Signature": "forged"})
    assert unsigned.status_code == 403
    leg = post(client, Webhook(leg_path, leg_form))
    assert leg.status_code == 200
    heard = xml(leg.data)
    assert [c.tag for c in heard] == ["Say", "Gather", "Hangup"]
    assert heard.findtext("Say") == "Call from mailer"
    gather = heard.find("Gather")
    assert gather is not None
    screen = urlsplit(gather.get("action", "")).path
    pressed = post(client, Webhook(screen, {**leg_form, "Digits": "1"}))
    assert pressed.status_code == 200 and list(xml(pressed.data)) == []
    refused = post(client, Webhook(screen, {**leg_form, "Digits": "7"}))
    assert [c.tag for c in xml(refused.data)] == ["Hangup"]


def test_sequential_ringing_falls_through_and_ends_in_voicemail_while_router_is_down(
    ingress_alone: Start,
) -> None:
    flow = {
        "ring": {"strategy": "sequential", "targets": TARGETS},
        "voicemail": {"greeting": "Please leave a message", "maxLengthSec": 60},
    }
    client = ingress_alone(flow)
    call = ForwardedCall(to=KNOWN, forward_to="+14155550101")
    first = xml(post(client, call.incoming()).data).find("Dial")
    assert first is not None and [n.text for n in first.findall("Number")] == ["+14155550101"]

    (hook,) = [h for h in call.unanswered() if h.path == "/api/twilio/dial-status"]

    def dial_ended(action: str, status: str) -> ET.Element:
        parts = urlsplit(action)
        params = {**hook.params, "DialCallStatus": status, "DialBridged": "false"}
        reply = post(client, Webhook(f"{parts.path}?{parts.query}", params))
        assert reply.status_code == 200
        return xml(reply.data)

    second = dial_ended(first.get("action", ""), "completed").find("Dial")
    assert second is not None and [n.text for n in second.findall("Number")] == ["+14155550102"]
    voicemail = dial_ended(second.get("action", ""), "no-answer")
    assert [c.tag for c in voicemail] == ["Say", "Record", "Hangup"]
    record = voicemail.find("Record")
    assert record is not None
    done = urlsplit(record.get("action", "")).path
    ended = post(client, Webhook(done, {"CallSid": call.call_sid, "RecordingDuration": "12"}))
    assert [c.tag for c in xml(ended.data)] == ["Hangup"]


def test_a_released_number_is_not_forwarded_and_only_an_unknown_one_hears_the_apology(
    kafka_bootstrap: str, topics: Topics, ingress_alone: Start
) -> None:
    client = ingress_alone({"ring": {"targets": TARGETS}})

    released = ForwardedCall(to=RELEASED, forward_to="+14155559999")
    not_in_service = xml(post(client, released.incoming()).data)
    assert not_in_service.find("Dial") is None
    assert "not in service" in (not_in_service.findtext("Say") or "")

    unknown = ForwardedCall(to=NEVER_SEEN, forward_to="+14155559999")
    apology = xml(post(client, unknown.incoming()).data)
    assert apology.find("Dial") is None
    assert "cannot connect your call" in (apology.findtext("Say") or "")

    found = read_topic(kafka_bootstrap, topics.call_events, expect=4)
    by_call = {
        sid: sorted(m["value"]["type"] for m in found if m["key"] == sid)
        for sid in (released.call_sid, unknown.call_sid)
    }
    assert by_call == {
        released.call_sid: ["call.received", "call.routed"],
        unknown.call_sid: ["call.fallback-served", "call.received"],
    }
    (unassigned,) = [m["value"] for m in found if m["value"]["type"] == "call.routed"]
    assert unassigned["data"]["disposition"] == "unassigned"


def test_a_number_released_later_stops_routing_from_its_release_event_on(
    kafka_bootstrap: str, topics: Topics, ingress_alone: Start
) -> None:
    client = ingress_alone({"ring": {"targets": TARGETS}})
    before = xml(post(client, ForwardedCall(to=KNOWN, forward_to="+1").incoming()).data)
    assert before.find("Dial") is not None

    producer = EventProducer(kafka_bootstrap)
    try:
        release = facts.number_released(assignment(KNOWN, None), datetime.now(UTC))
        producer.publish(topics.number_events, release, key=KNOWN, timeout=10)
    finally:
        producer.close()
    copy = runtime_of(client.application).copy
    wait_until(
        lambda: type(copy.lookup(KNOWN)).__name__ == "ReleasedNumber",
        timeout=15,
        message="the release reached the copy",
    )
    after = xml(post(client, ForwardedCall(to=KNOWN, forward_to="+1").incoming()).data)
    assert after.find("Dial") is None


def test_a_restarted_ingress_rebuilds_its_copy_before_it_is_ready(
    router_down: Config, make_client: Callable[[Config], FlaskClient], ingress_alone: Start
) -> None:
    first = ingress_alone({"ring": {"targets": TARGETS}})
    assert first.get("/readyz").status_code == 200
    runtime_of(first.application).close()
    stopped = first.get("/readyz")
    assert stopped.status_code == 503
    assert any("no longer following" in p for p in stopped.get_json()["problems"])

    # Not waiting at start: not ready until the copy is built, then answering from it.
    again = make_client(replace(router_down, copy_wait=0.0))
    copy = runtime_of(again.application).copy
    while not copy.caught_up:
        readiness = again.get("/readyz")
        if copy.caught_up:
            break
        assert readiness.status_code == 503
        assert any("routing copy" in p for p in readiness.get_json()["problems"])
    assert again.get("/readyz").status_code == 200
    call = ForwardedCall(to=KNOWN, forward_to="+14155550101")
    dial = xml(post(client=again, hook=call.incoming()).data).find("Dial")
    assert dial is not None and len(dial.findall("Number")) == 2


def test_signed_with_the_edge_url_the_leg_twiml_needs_no_router(
    router_down: Config, make_client: Callable[[Config], FlaskClient]
) -> None:
    client = make_client(router_down)
    path = "/api/twilio/flow/answer?whisper=Hi%00there"
    reply = client.get(path, headers={"X-Twilio-Signature": sign(TOKEN, BASE + path, {})})
    assert reply.status_code == 200
    assert xml(reply.data).findtext("Say") == "Hithere"


@pytest.mark.parametrize(
    ("now", "rings"), [("2026-12-07T15:00:00Z", True), ("2026-12-07T03:00:00Z", False)]
)
def test_business_hours_from_the_copy_follow_the_development_clock(
    kafka_bootstrap: str,
    topics: Topics,
    router_down: Config,
    make_client: Callable[[Config], FlaskClient],
    now: str,
    rings: bool,
) -> None:
    # ROUTER_CLOCK_URL: ingress deciding in router's stead reads the same clock router would.
    class Clock(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps({"now": now}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Clock)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # Monday 09:00-17:00 in New York: 15:00Z is 10:00 there, 03:00Z is Sunday night.
        flow = {
            "businessHours": {"weekly": {"mon": [["09:00", "17:00"]]}},
            "ring": {"strategy": "simultaneous", "targets": TARGETS},
            "afterHours": "voicemail",
        }
        publish_numbers(kafka_bootstrap, topics, flow)
        clock_url = f"http://127.0.0.1:{server.server_port}/sim/clock"
        client = make_client(replace(router_down, clock_url=clock_url))
        reply = post(client, ForwardedCall(to=KNOWN, forward_to="+14155550101").incoming())
        assert reply.status_code == 200
        root = xml(reply.data)
        assert (root.find("Dial") is not None) is rings
        assert (root.find("Record") is not None) is not rings
    finally:
        server.shutdown()
