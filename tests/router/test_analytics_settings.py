"""The client settings analytics reports with, through router's client API.

`valuePerConversion` and `leadThresholds` are set, read and changed like any
other client setting, validated before anything is written, and published
in `client.settings-changed` (tests/analytics/test_settings_from_router.py
follows them into analytics).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from switchboard import events
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.router.actions import AUTH, audit_entries, create_client

THRESHOLDS = {"shortSec": 15, "longSec": 90, "qualifiedSec": 45}


def test_lead_thresholds_and_value_are_created_read_and_changed(http: FlaskClient) -> None:
    client = create_client(http, valuePerConversion=120.5, leadThresholds=THRESHOLDS)
    url = f"/api/clients/{client['id']}"
    assert (client["valuePerConversion"], client["leadThresholds"]) == (120.5, THRESHOLDS)
    assert http.get(url, headers=AUTH).get_json() == client

    changed = {"shortSec": 20, "longSec": 200, "qualifiedSec": 0}
    patched = http.patch(url, json={"leadThresholds": changed}, headers=AUTH).get_json()
    assert (patched["leadThresholds"], patched["valuePerConversion"]) == (changed, 120.5)
    [entry] = audit_entries(http, action="client.updated")
    assert entry["details"]["changed"] == ["leadThresholds"]

    reset = http.patch(url, json={"leadThresholds": None}, headers=AUTH).get_json()
    assert reset["leadThresholds"] is None
    assert http.get(url, headers=AUTH).get_json()["leadThresholds"] is None

    default = create_client(http, name="Plain")
    assert (default["leadThresholds"], default["valuePerConversion"]) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"leadThresholds": {"shortSec": 90, "longSec": 15, "qualifiedSec": 45}},
        {"leadThresholds": {"shortSec": 0, "longSec": 15, "qualifiedSec": 45}},
        {"leadThresholds": {"shortSec": 15, "longSec": 90, "qualifiedSec": -1}},
        {"leadThresholds": {"shortSec": 15, "longSec": 90}},
        {"leadThresholds": {"shortSec": "15", "longSec": 90, "qualifiedSec": 45}},
        {"leadThresholds": 30},
        {"valuePerConversion": -1},
        {"valuePerConversion": "50"},
        {"dailyOutboundCap": -3},
    ],
)
def test_bad_analytics_settings_are_a_400_naming_the_field_and_change_nothing(
    http: FlaskClient, body: dict[str, Any]
) -> None:
    client = create_client(http, valuePerConversion=10, leadThresholds=THRESHOLDS)
    before = len(audit_entries(http))
    response = http.patch(f"/api/clients/{client['id']}", json=body, headers=AUTH)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_field" and error["message"].startswith(next(iter(body)))
    assert http.get(f"/api/clients/{client['id']}", headers=AUTH).get_json() == client
    assert len(audit_entries(http)) == before
    created = http.post("/api/clients", json={"name": "New", **body}, headers=AUTH)
    assert created.status_code == 400


def test_published_settings_carry_value_per_conversion_and_lead_thresholds(
    http: FlaskClient, kafka_bootstrap: str, topics: Topics
) -> None:
    client = create_client(http, valuePerConversion=99.99, leadThresholds=THRESHOLDS)
    http.patch(f"/api/clients/{client['id']}", json={"valuePerConversion": None}, headers=AUTH)

    found = read_topic(kafka_bootstrap, topics.client_events, expect=2)

    for message in found:
        events.validate(message["value"])
    datas = [m["value"]["data"] for m in found]
    assert [d["valuePerConversion"] for d in datas] == [99.99, None]
    assert [d["leadThresholds"] for d in datas] == [THRESHOLDS, THRESHOLDS]
