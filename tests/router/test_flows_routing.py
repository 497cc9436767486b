"""Calls to a number with a call flow follow it; a number without one routes as before.

The routing decision is judged at an injected moment (pure tests); the live
endpoints run on real PostgreSQL and Kafka, with business hours that are open
all week or never, so the wall clock does not matter there.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from services.router.dialing import DialPolicy
from services.router.directory import NumberAssignment
from services.router.flows import DAYS, Flow
from services.router.routing import decide
from tests.router.actions import AUTH, assign_number, create_client, route

NUMBER = "+14155550100"
TARGETS = [{"number": "+14155550101", "timeoutSec": 15}, {"number": "+14155550102"}]
ALWAYS = {"weekly": {day: [["00:00", "24:00"]] for day in DAYS}}
NEVER: dict[str, Any] = {"weekly": {}}


def flow(**body: Any) -> Flow:
    return Flow.parse(body, NUMBER, DialPolicy())


def assignment(with_flow: Flow | None, timezone: str = "UTC") -> NumberAssignment:
    return NumberAssignment(
        NUMBER,
        "c1",
        "+14155559999",
        True,
        None,
        "mailer",
        datetime(2026, 1, 1, tzinfo=UTC),
        timezone,
        with_flow,
    )


def xml(text: str) -> ET.Element:
    return ET.fromstring(text)


# ---- the decision, at a chosen moment


def test_a_number_without_a_flow_is_decided_as_before() -> None:
    decision = decide(NUMBER, assignment(None), datetime(2026, 12, 25, tzinfo=UTC))
    assert decision.flow is None and decision.in_hours is True
    assert decision.forward_to == "+14155559999"


@pytest.mark.parametrize(
    ("moment", "in_hours"),
    [
        (datetime(2026, 3, 23, 16, 59, tzinfo=UTC), True),  # Monday 09:59 in Los Angeles
        (datetime(2026, 3, 23, 15, 59, tzinfo=UTC), False),  # Monday 08:59 there
        (datetime(2026, 3, 24, 1, 0, tzinfo=UTC), False),  # Monday 18:00 there
        (datetime(2026, 12, 25, 18, 0, tzinfo=UTC), False),  # a closed date
    ],
)
def test_business_hours_are_judged_at_the_moment_given_in_the_clients_zone(
    moment: datetime, in_hours: bool
) -> None:
    hours = flow(
        businessHours={
            "weekly": {day: [["09:00", "17:00"]] for day in DAYS[:5]},
            "closedDates": ["2026-12-25"],
        }
    )
    decision = decide(NUMBER, assignment(hours, "America/Los_Angeles"), moment)
    assert decision.flow == hours
    assert decision.in_hours is in_hours


# ---- the live router


@pytest.fixture
def client_id(http: FlaskClient) -> str:
    client = create_client(http, forwardTo="+14155559999", recordingEnabled=False)
    assign_number(http, client["id"], phoneNumber=NUMBER, campaign="mailer")
    return str(client["id"])


def set_flow(http: FlaskClient, body: dict[str, Any]) -> None:
    response = http.put(f"/api/numbers/{NUMBER}/flow", json=body, headers=AUTH)
    assert response.status_code == 200, response.get_json()


def routed(http: FlaskClient, call_sid: str) -> ET.Element:
    response = route(http, call_sid, NUMBER)
    assert response.status_code == 200
    return xml(response.get_data(as_text=True))


def test_a_flow_in_hours_rings_its_targets_and_a_change_applies_to_the_next_call(
    http: FlaskClient, client_id: str
) -> None:
    before = routed(http, "CA" + "1" * 32)
    assert [n.text for n in before.iter("Number")] == ["+14155559999"]

    set_flow(http, {"businessHours": ALWAYS, "ring": {"targets": TARGETS}})
    ringing = routed(http, "CA" + "2" * 32)
    (dial,) = ringing.findall("Dial")
    assert [n.text for n in dial.findall("Number")] == ["+14155550101", "+14155550102"]
    assert parse_qs(urlsplit(dial.get("action", "")).query) == {"flowStep": ["0"]}

    set_flow(http, {"businessHours": NEVER, "voicemail": {"greeting": "Closed now"}})
    closed = routed(http, "CA" + "3" * 32)
    assert [child.tag for child in closed] == ["Say", "Record", "Hangup"]
    assert closed.findtext("Say") == "Closed now"

    set_flow(http, {})
    assert ET.tostring(routed(http, "CA" + "4" * 32)) == ET.tostring(before)


def after_dial(http: FlaskClient, step: str, status: str, bridged: str | None = None) -> Any:
    form = {"To": NUMBER, "DialCallStatus": status, "flowStep": step, "CallSid": "CA" + "5" * 32}
    if bridged is not None:
        form["DialBridged"] = bridged
    return http.post("/internal/flow/after-dial", data=form)


def test_sequential_ringing_moves_on_then_falls_through_to_voicemail(
    http: FlaskClient, client_id: str
) -> None:
    set_flow(http, {"ring": {"strategy": "sequential", "targets": TARGETS}})
    first = routed(http, "CA" + "6" * 32)
    assert [n.text for n in first.iter("Number")] == ["+14155550101"]

    second = xml(after_dial(http, "0", "completed", bridged="false").get_data(as_text=True))
    assert [n.text for n in second.iter("Number")] == ["+14155550102"]

    last = xml(after_dial(http, "1", "no-answer").get_data(as_text=True))
    assert [child.tag for child in last] == ["Say", "Record", "Hangup"]

    taken = xml(after_dial(http, "0", "completed", bridged="true").get_data(as_text=True))
    assert [child.tag for child in taken] == ["Hangup"]


def test_after_dial_of_the_forward_or_of_a_number_without_a_flow_hangs_up(
    http: FlaskClient, client_id: str
) -> None:
    assert [c.tag for c in xml(after_dial(http, "0", "no-answer").get_data(as_text=True))] == [
        "Hangup"
    ]
    set_flow(http, {"afterHours": "forward", "afterHoursNumber": "+14155550199"})
    ended = xml(after_dial(http, "forward", "no-answer").get_data(as_text=True))
    assert [c.tag for c in ended] == ["Hangup"]


@pytest.mark.parametrize("step", ["", "ten", "10", "-1"])
def test_after_dial_with_a_bad_step_is_a_json_400(
    http: FlaskClient, client_id: str, step: str
) -> None:
    response = after_dial(http, step, "no-answer")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_field"


def test_the_answering_leg_is_sent_to_hear_the_whisper_and_press_1(
    http: FlaskClient, client_id: str
) -> None:
    # Ingress serves the leg's TwiML (tests/ingress/test_routing_copy_app.py).
    set_flow(
        http,
        {"ring": {"targets": TARGETS}, "whisper": "Call from {campaign}", "screening": True},
    )
    url = next(routed(http, "CA" + "7" * 32).iter("Number")).get("url", "")
    parts = urlsplit(url)
    assert parts.path == "/api/twilio/flow/answer"
    assert parse_qs(parts.query) == {"whisper": ["Call from mailer"], "screen": ["1"]}


def test_a_stored_flow_that_no_longer_reads_is_ignored_not_fatal(
    router_app: Flask, http: FlaskClient, client_id: str
) -> None:
    runtime = runtime_of(router_app)
    with runtime.store.transaction() as tx:
        tx.execute(
            "UPDATE phone_numbers SET flow = %s::jsonb WHERE phone_number = %s",
            ('{"ring": {"targets": []}}', NUMBER),
        )
    assert runtime.table.reload(runtime.store.all_assignments)
    assert [n.text for n in routed(http, "CA" + "8" * 32).iter("Number")] == ["+14155559999"]
