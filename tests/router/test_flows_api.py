"""GET / PUT /api/numbers/<phoneNumber>/flow against real PostgreSQL and Kafka.

A flow is stored, read back, audited and announced on number-events; a bad
flow is a 400 naming field and reason and changes nothing; a client key sees
only its own numbers' flows; a number with no flow routes exactly as before.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from switchboard import events
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.router.actions import (
    AUTH,
    assign_number,
    audit_entries,
    bearer,
    create_client,
    issue_key,
)
from tests.support import wait_until

NUMBER = "+14155550100"
FLOW: dict[str, Any] = {
    "businessHours": {"weekly": {"mon": [["09:00", "17:00"]]}, "closedDates": ["2026-12-25"]},
    "ring": {"strategy": "simultaneous", "targets": [{"number": "+14155550101"}]},
    "whisper": "Call from {campaign}",
    "screening": True,
    "afterHours": "voicemail",
    "voicemail": {"greeting": "Sorry we missed you", "maxLengthSec": 60},
    "textBack": {"message": "Sorry we missed your call", "cooldownHours": 24},
}


def path(number: str = NUMBER) -> str:
    return f"/api/numbers/{number}/flow"


@pytest.fixture
def client_id(http: FlaskClient) -> str:
    client = create_client(http, forwardTo="+14155559999")
    assign_number(http, client["id"], phoneNumber=NUMBER, campaign="mailer")
    return str(client["id"])


def test_a_number_without_a_flow_answers_an_empty_one(http: FlaskClient, client_id: str) -> None:
    response = http.get(path(), headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {}


def test_a_flow_set_is_read_back_with_defaults_filled_in(http: FlaskClient, client_id: str) -> None:
    put = http.put(path(), json=FLOW, headers=AUTH)
    assert put.status_code == 200, put.get_json()
    got = http.get(path().replace("+", "%2B"), headers=AUTH).get_json()
    assert got == put.get_json()
    assert got["ring"]["targets"] == [{"number": "+14155550101", "timeoutSec": 20}]
    assert got["afterHoursNumber"] is None
    assert got["businessHours"]["closedDates"] == ["2026-12-25"]


def test_setting_a_flow_is_audited_with_the_flow_before_and_after(
    http: FlaskClient, client_id: str
) -> None:
    http.put(path(), json=FLOW, headers=AUTH)
    http.put(path(), json={"screening": False, "whisper": "Hi"}, headers=AUTH)
    entries = audit_entries(http, action="number.flow-set")
    assert [e["targetId"] for e in entries] == [NUMBER, NUMBER]
    latest, first = entries
    assert first["details"]["previous"] is None
    assert first["details"]["flow"]["screening"] is True
    assert latest["details"]["previous"]["screening"] is True
    assert latest["details"]["flow"]["whisper"] == "Hi"
    assert latest["clientId"] == client_id and latest["actor"] == "admin"


def test_an_empty_flow_removes_the_flow(http: FlaskClient, client_id: str) -> None:
    http.put(path(), json=FLOW, headers=AUTH)
    response = http.put(path(), json={}, headers=AUTH)
    assert response.status_code == 200 and response.get_json() == {}
    assert http.get(path(), headers=AUTH).get_json() == {}


def test_number_assigned_events_carry_the_flow(
    router_app: Flask, http: FlaskClient, client_id: str, kafka_bootstrap: str, topics: Topics
) -> None:
    http.put(path(), json=FLOW, headers=AUTH)
    store = runtime_of(router_app).store
    wait_until(lambda: store.outbox_size() == 0, timeout=15, message="outbox drained")
    found = read_topic(kafka_bootstrap, topics.number_events, expect=2)
    assigned = [m for m in found if m["value"]["type"] == "number.assigned"]
    for message in assigned:
        events.validate(message["value"])
    assert [m["value"]["data"]["flow"] is None for m in assigned] == [True, False]
    latest = assigned[-1]
    assert latest["key"] == NUMBER
    assert latest["value"]["data"]["flow"] == http.get(path(), headers=AUTH).get_json()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"ringAll": True}, "ringAll", "unknown field"),
        ({"businessHours": {"weekly": {"mon": [["09:00", "25:00"]]}}}, "mon[0][1]", "time"),
        (
            {"businessHours": {"weekly": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}},
            "businessHours.weekly.mon",
            "overlapping",
        ),
        (
            {"ring": {"targets": [{"number": f"+1415555{i:04d}"} for i in range(200, 211)]}},
            "ring.targets",
            "at most 10",
        ),
        ({"ring": {"targets": [{"number": "0044207946"}]}}, "ring.targets[0].number", "E.164"),
        ({"afterHoursNumber": "+442079460000"}, "afterHoursNumber", "calls may only go to US"),
    ],
)
def test_a_bad_flow_is_a_400_with_field_and_reason_and_changes_nothing(
    http: FlaskClient, client_id: str, body: dict[str, Any], field: str, reason: str
) -> None:
    http.put(path(), json=FLOW, headers=AUTH)
    before = http.get(path(), headers=AUTH).get_json()
    response = http.put(path(), json=body, headers=AUTH)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] in ("invalid_field", "unknown_field", "number_not_allowed")
    assert field in error["message"] and reason in error["message"]
    assert http.get(path(), headers=AUTH).get_json() == before
    assert len(audit_entries(http, action="number.flow-set")) == 1


def test_a_client_key_reads_and_sets_only_its_own_numbers_flows(
    http: FlaskClient, client_id: str
) -> None:
    mine = bearer(issue_key(http, client_id)["key"])
    other = create_client(http, forwardTo="+14155558888")
    assign_number(http, other["id"], phoneNumber="+14155550200")
    assert http.put(path(), json=FLOW, headers=mine).status_code == 200
    assert http.get(path(), headers=mine).get_json()["screening"] is True
    for response in (
        http.get(path("+14155550200"), headers=mine),
        http.put(path("+14155550200"), json=FLOW, headers=mine),
    ):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "number_not_found"
    assert http.get(path("+14155550200"), headers=AUTH).get_json() == {}
    entry = audit_entries(http, action="number.flow-set")[0]
    assert entry["actor"].startswith(f"client:{client_id}:key:")


@pytest.mark.parametrize("number", ["+14155550999", "not-a-number"])
def test_a_number_nobody_holds_is_a_404(http: FlaskClient, number: str) -> None:
    for response in (
        http.get(path(number), headers=AUTH),
        http.put(path(number), json=FLOW, headers=AUTH),
    ):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "number_not_found"


def test_the_flow_api_needs_a_token(http: FlaskClient, client_id: str) -> None:
    assert http.get(path()).status_code == 401
    assert http.put(path(), json=FLOW).status_code == 401


def test_a_released_number_drops_its_flow(http: FlaskClient, client_id: str) -> None:
    http.put(path(), json=FLOW, headers=AUTH)
    http.delete(f"/api/clients/{client_id}/numbers/{NUMBER}", headers=AUTH)
    assign_number(http, client_id, phoneNumber=NUMBER)
    assert http.get(path(), headers=AUTH).get_json() == {}
