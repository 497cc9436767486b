"""Client CRUD over real PostgreSQL and Kafka: settings, events, audit, routing effects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from services.router.directory import DEFAULT_DISCLAIMER
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
    route,
)
from tests.twilio_calls import new_call_sid

NUMBER = "+14155550100"
PHONE = "+14155559999"


def settings_events(bootstrap: str, topics: Topics, expect: int) -> list[dict[str, Any]]:
    found = read_topic(bootstrap, topics.client_events, expect=expect)
    for message in found:
        events.validate(message["value"])
        assert message["value"]["type"] == "client.settings-changed"
        assert message["key"] == message["value"]["clientId"]
    return found


def test_new_client_records_with_the_default_disclaimer(http: FlaskClient) -> None:
    created = create_client(http)
    assert created["recordingEnabled"] is True
    assert created["recordingDisclaimer"] == DEFAULT_DISCLAIMER
    assert created["retentionDays"] is None
    assert created["deleteFromTwilio"] is False
    assert created["monthlyRevenue"] is None
    assert created["updatedAt"] == created["createdAt"]


def test_patch_changes_only_the_fields_given(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE, timezone="Europe/Paris", retentionDays=30)
    response = http.patch(
        f"/api/clients/{client['id']}",
        json={"recordingEnabled": False, "monthlyRevenue": 2500.5, "valuePerConversion": 80},
        headers=AUTH,
    )
    assert response.status_code == 200
    patched = response.get_json()
    assert patched == {
        **client,
        "recordingEnabled": False,
        "monthlyRevenue": 2500.5,
        "valuePerConversion": 80.0,
        "updatedAt": patched["updatedAt"],
    }
    assert patched["updatedAt"] > client["updatedAt"]
    assert http.get(f"/api/clients/{client['id']}", headers=AUTH).get_json() == patched


def test_put_replaces_the_client_and_resets_what_it_leaves_out(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE, retentionDays=30, deleteFromTwilio=True)
    response = http.put(f"/api/clients/{client['id']}", json={"name": "Renamed"}, headers=AUTH)
    assert response.status_code == 200
    replaced = response.get_json()
    assert replaced["name"] == "Renamed"
    assert replaced["forwardTo"] is None
    assert replaced["retentionDays"] is None
    assert replaced["deleteFromTwilio"] is False
    assert replaced["createdAt"] == client["createdAt"]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {}),
        ("PATCH", {"retentionDays": 0}),
        ("PATCH", {"name": None}),
        ("PATCH", {"recordingEnabled": "false"}),
        ("PATCH", {"sneaky": True}),
        ("PUT", {"forwardTo": PHONE}),
        ("PUT", {"name": "ok", "monthlyRevenue": -5}),
    ],
)
def test_bad_update_is_a_400_and_changes_nothing(
    router_app: Flask, http: FlaskClient, method: str, body: dict[str, Any]
) -> None:
    client = create_client(http, forwardTo=PHONE)
    before = len(audit_entries(http))
    response = http.open(f"/api/clients/{client['id']}", method=method, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]
    assert http.get(f"/api/clients/{client['id']}", headers=AUTH).get_json() == client
    assert len(audit_entries(http)) == before
    assert runtime_of(router_app).store.outbox_size() in (0, 1)  # only the create's, if unsent


def test_every_change_publishes_the_settings_keyed_by_client(
    http: FlaskClient, kafka_bootstrap: str, topics: Topics
) -> None:
    client = create_client(http, retentionDays=30)
    http.patch(f"/api/clients/{client['id']}", json={"deleteFromTwilio": True}, headers=AUTH)
    assert http.delete(f"/api/clients/{client['id']}", headers=AUTH).status_code == 200

    found = settings_events(kafka_bootstrap, topics, expect=3)

    datas = [m["value"]["data"] for m in found]
    assert [d["deleteFromTwilio"] for d in datas] == [False, True, True]
    assert [d["deleted"] for d in datas] == [False, False, True]
    assert all(d["retentionDays"] == 30 and d["clientId"] == client["id"] for d in datas)
    assert datas[0]["name"] == "Acme Plumbing" and datas[0]["timezone"] == "UTC"
    assert len({m["partition"] for m in found}) == 1


def test_client_recording_setting_reaches_routing_at_once(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE, recordingDisclaimer="Recorded, sorry.")
    assign_number(http, client["id"], phoneNumber=NUMBER)
    first = route(http, new_call_sid(), NUMBER).data.decode()
    assert "Recorded, sorry." in first and "record-from-answer" in first

    http.patch(f"/api/clients/{client['id']}", json={"recordingEnabled": False}, headers=AUTH)

    second = route(http, new_call_sid(), NUMBER).data.decode()
    assert "Recorded, sorry." not in second and "record=" not in second
    number = http.get(f"/api/clients/{client['id']}/numbers/{NUMBER}", headers=AUTH)
    assert number.get_json()["record"] is False


def test_number_own_recording_setting_overrides_its_client(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE, recordingEnabled=False)
    assign_number(http, client["id"], phoneNumber=NUMBER, record=True)
    assert "record-from-answer" in route(http, new_call_sid(), NUMBER).data.decode()


def test_deleting_a_client_pools_its_numbers_and_kills_its_keys(
    router_app: Flask, http: FlaskClient
) -> None:
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber=NUMBER)
    key = issue_key(http, client["id"])["key"]
    assert http.get("/api/clients", headers=bearer(key)).status_code == 200

    assert http.delete(f"/api/clients/{client['id']}", headers=AUTH).status_code == 200

    assert http.get(f"/api/clients/{client['id']}", headers=AUTH).status_code == 404
    assert http.delete(f"/api/clients/{client['id']}", headers=AUTH).status_code == 404
    assert http.get("/api/clients", headers=bearer(key)).status_code == 403
    assert "not in service" in route(http, new_call_sid(), NUMBER).data.decode()
    pooled = http.get("/api/twilio/numbers", query_string={"status": "pooled"}, headers=AUTH)
    assert [n["phoneNumber"] for n in pooled.get_json()["numbers"]] == [NUMBER]
    actions = [e["action"] for e in audit_entries(http, clientId=client["id"])]
    assert actions[:2] == ["client.deleted", "number.released"]


def test_unknown_client_is_a_404_for_every_method(http: FlaskClient) -> None:
    missing = str(uuid.uuid4())
    for method, body in (
        ("GET", None),
        ("PATCH", {"name": "x"}),
        ("PUT", {"name": "x"}),
        ("DELETE", None),
    ):
        response = http.open(f"/api/clients/{missing}", method=method, json=body, headers=AUTH)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "client_not_found"
