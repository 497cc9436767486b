"""The number events say all routing needs, so ingress can route a number while router is down.

`number.assigned` carries the disclaimer and the client's time zone beside
the flow, and is published again for each of a client's numbers when the
client's settings change (its time zone moves business hours).
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from switchboard import events
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.router.actions import AUTH, assign_number, create_client
from tests.support import wait_until


def test_a_client_moving_time_zone_republishes_its_numbers_with_zone_and_disclaimer(
    router_app: Flask, http: FlaskClient, kafka_bootstrap: str, topics: Topics
) -> None:
    client = create_client(
        http, forwardTo="+14155559999", timezone="America/New_York", recordingEnabled=True
    )
    assign_number(http, client["id"], phoneNumber="+14155550100", recordingDisclaimer="Recorded.")
    assign_number(http, client["id"], phoneNumber="+14155550111")
    moved = http.patch(
        f"/api/clients/{client['id']}", json={"timezone": "America/Denver"}, headers=AUTH
    )
    assert moved.status_code == 200, moved.get_json()
    store = runtime_of(router_app).store
    wait_until(lambda: store.outbox_size() == 0, timeout=15, message="outbox drained")

    found = read_topic(kafka_bootstrap, topics.number_events, expect=4)
    for message in found:
        events.validate(message["value"])
    seen = [
        (m["key"], m["value"]["data"]["timezone"], m["value"]["data"]["recordingDisclaimer"])
        for m in found
    ]
    default = client["recordingDisclaimer"]
    assert sorted(seen) == sorted(
        [
            ("+14155550100", "America/New_York", "Recorded."),
            ("+14155550111", "America/New_York", default),
            ("+14155550100", "America/Denver", "Recorded."),
            ("+14155550111", "America/Denver", default),
        ]
    )
