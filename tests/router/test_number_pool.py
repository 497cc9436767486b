"""The number pool over real PostgreSQL, Kafka and the Twilio simulator.

Numbers without a client wait in the pool; a client asking for a number
without naming one gets the pool's longest-resting number (in its area code
when asked), and only when the pool has none is one bought from Twilio.
Releasing a number puts it back in the pool and stops routing to the old
client at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from switchboard import events
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.router.actions import (
    AUTH,
    LiveRouter,
    assign_number,
    audit_entries,
    create_client,
    route,
    wait_synced,
)
from tests.twilio_calls import new_call_sid
from tests.twilio_sim.simulator import Simulator

PHONE = "+14155559999"
OTHER_PHONE = "+12125559999"


def pool_numbers(http: FlaskClient) -> list[str]:
    response = http.get("/api/twilio/numbers", query_string={"status": "pooled"}, headers=AUTH)
    assert response.status_code == 200
    return [n["phoneNumber"] for n in response.get_json()["numbers"]]


def release(http: FlaskClient, client_id: str, number: str) -> None:
    response = http.delete(f"/api/clients/{client_id}/numbers/{number}", headers=AUTH)
    assert response.status_code == 204, response.get_json()


def pool_of(http: FlaskClient, *numbers: str) -> None:
    """Put `numbers` in the pool, in this order (the first rested longest)."""
    holder = create_client(http, name="Previous owner", forwardTo=PHONE)
    for number in numbers:
        assign_number(http, holder["id"], phoneNumber=number)
    for number in numbers:
        release(http, holder["id"], number)


def number_events(bootstrap: str, topics: Topics, expect: int) -> list[dict[str, Any]]:
    found = read_topic(bootstrap, topics.number_events, expect=expect)
    for message in found:
        events.validate(message["value"])
        assert message["key"] == message["value"]["data"]["phoneNumber"]
    return found


def test_released_number_goes_to_the_pool_and_stops_routing_at_once(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber="+14155550100")
    assert PHONE in route(http, new_call_sid(), "+14155550100").data.decode()

    release(http, client["id"], "+14155550100")

    assert "not in service" in route(http, new_call_sid(), "+14155550100").data.decode()
    assert http.get(f"/api/clients/{client['id']}/numbers", headers=AUTH).get_json() == {
        "numbers": []
    }
    assert pool_numbers(http) == ["+14155550100"]


def test_number_without_phone_number_comes_from_the_pool_longest_resting_first(
    http: FlaskClient,
) -> None:
    pool_of(http, "+14155550101", "+14155550102")
    client = create_client(http, name="New owner")

    first = assign_number(http, client["id"], forwardTo=OTHER_PHONE, campaign="radio")
    second = assign_number(http, client["id"], forwardTo=OTHER_PHONE)

    assert first["phoneNumber"] == "+14155550101"
    assert first["forwardTo"] == OTHER_PHONE and first["campaign"] == "radio"
    assert second["phoneNumber"] == "+14155550102"
    assert pool_numbers(http) == []
    assert OTHER_PHONE in route(http, new_call_sid(), "+14155550101").data.decode()
    sources = [
        e["details"]["source"]
        for e in audit_entries(http, action="number.assigned", clientId=client["id"])
    ]
    assert sources == ["pool", "pool"]


def test_pool_honours_the_area_code(http: FlaskClient) -> None:
    pool_of(http, "+14155550101", "+12125550101")
    client = create_client(http, forwardTo=OTHER_PHONE)

    assert assign_number(http, client["id"], areaCode="212")["phoneNumber"] == "+12125550101"
    assert pool_numbers(http) == ["+14155550101"]


def test_concurrent_requests_never_get_the_same_pooled_number(router_app: Flask) -> None:
    http = router_app.test_client()
    pool_of(http, *[f"+1415555020{i}" for i in range(6)])
    client = create_client(http, forwardTo=OTHER_PHONE)

    def take(_: int) -> str:
        response = router_app.test_client().post(
            f"/api/clients/{client['id']}/numbers", json={}, headers=AUTH
        )
        assert response.status_code == 201, response.get_json()
        number: str = response.get_json()["phoneNumber"]
        return number

    with ThreadPoolExecutor(max_workers=6) as workers:
        taken = list(workers.map(take, range(6)))

    assert sorted(taken) == [f"+1415555020{i}" for i in range(6)]


def test_empty_pool_without_twilio_is_a_503_that_writes_nothing(
    router_app: Flask, http: FlaskClient
) -> None:
    client = create_client(http, forwardTo=PHONE)
    response = http.post(f"/api/clients/{client['id']}/numbers", json={}, headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "twilio_not_configured"
    assert runtime_of(router_app).store.all_assignments() == []
    assert audit_entries(http, action="number.assigned") == []


def test_empty_pool_buys_a_number_pointed_at_this_deployment(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    client = create_client(twilio_http, forwardTo=PHONE)

    assigned = assign_number(twilio_http, client["id"], areaCode="312", campaign="web")

    phone = assigned["phoneNumber"]
    assert phone.startswith("+1312")
    [owned] = simulator.client().incoming_phone_numbers.list(phone_number=phone)
    assert owned.voice_url == "https://calls.example.com/api/twilio/webhook"
    assert owned.status_callback == "https://calls.example.com/api/twilio/status"
    held = wait_synced(twilio_http, phone)
    assert held == {
        "phoneNumber": phone,
        "sid": owned.sid,
        "locality": held["locality"],
        "region": "IL",
        "clientId": client["id"],
        "status": "assigned",
        "acquiredAt": held["acquiredAt"],
        "twilioSync": {
            "status": "synced",
            "attempts": 0,
            "lastError": None,
            "syncedAt": held["twilioSync"]["syncedAt"],
        },
    }
    # Bought into the pool, then assigned: Twilio's fallback now forwards to the client.
    fallback = simulator.client().incoming_phone_numbers(owned.sid).fetch().voice_fallback_url
    assert fallback == "https://twimlets.com/forward?PhoneNumber=%2B14155559999"
    actions = [e["action"] for e in audit_entries(twilio_http)]
    assert actions[:2] == ["number.assigned", "number.purchased"]


def test_campaign_tag_changes_attribution_of_the_next_calls(
    http: FlaskClient, kafka_bootstrap: str, topics: Topics
) -> None:
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber="+14155550100", campaign="mailer")

    response = http.patch(
        f"/api/clients/{client['id']}/numbers/%2B14155550100",
        json={"campaign": "billboard", "forwardTo": OTHER_PHONE},
        headers=AUTH,
    )

    assert response.status_code == 200
    assert response.get_json()["campaign"] == "billboard"
    assert OTHER_PHONE in route(http, new_call_sid(), "+14155550100").data.decode()
    found = number_events(kafka_bootstrap, topics, expect=2)
    assert [m["value"]["data"]["campaign"] for m in found] == ["mailer", "billboard"]
    assert {m["value"]["data"]["assignedAt"] for m in found} == {response.get_json()["assignedAt"]}


def test_assignment_and_release_are_published_keyed_by_number(
    http: FlaskClient, kafka_bootstrap: str, topics: Topics
) -> None:
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber="+14155550100", campaign="mailer")
    release(http, client["id"], "+14155550100")

    found = number_events(kafka_bootstrap, topics, expect=2)

    assert [m["value"]["type"] for m in found] == ["number.assigned", "number.released"]
    released = found[1]["value"]
    assert released["clientId"] == client["id"]
    assert released["data"]["clientId"] == client["id"]
    assert released["data"]["campaign"] == "mailer"
    assert released["data"]["releasedAt"] >= released["data"]["assignedAt"]


def test_releasing_a_number_the_client_does_not_hold_is_a_404(http: FlaskClient) -> None:
    owner = create_client(http, forwardTo=PHONE)
    other = create_client(http, name="Other", forwardTo=PHONE)
    assign_number(http, owner["id"], phoneNumber="+14155550100")
    for client_id, number in (
        (other["id"], "+14155550100"),
        (owner["id"], "+14155550199"),
        (owner["id"], "not-a-number"),
    ):
        response = http.delete(f"/api/clients/{client_id}/numbers/{number}", headers=AUTH)
        assert response.status_code == 404
    assert PHONE in route(http, new_call_sid(), "+14155550100").data.decode()


def test_simulated_caller_hears_not_in_service_once_the_number_is_released(
    live_router: LiveRouter,
) -> None:
    http = live_router.app.test_client()
    sim = live_router.simulator
    client = create_client(http, forwardTo=PHONE)
    number = assign_number(http, client["id"], areaCode="503")["phoneNumber"]
    wait_synced(http, number)
    # Stand in for the edge and ingress: Twilio's webhook goes straight to router.
    sim.own_number(number, f"{live_router.url}/internal/route")

    before = sim.wait_for_call(sim.place_call(**{"from": "+14155550123", "to": number}))
    release(http, client["id"], number)
    wait_synced(http, number)
    sim.own_number(number, f"{live_router.url}/internal/route")
    after = sim.wait_for_call(sim.place_call(**{"from": "+14155550123", "to": number}))

    for play in (before, after):
        assert play["callbacks"][0]["url"] == f"{live_router.url}/internal/route"
        assert play["callbacks"][0]["status"] == 200
    assert [d["number"] for d in before["dials"]] == [PHONE]
    assert after["dials"] == []
    assert "not in service" in after["twiml"][0]["body"]
