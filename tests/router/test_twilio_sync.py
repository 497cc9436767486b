"""Fail-safe forwarding: each number's configuration at Twilio follows who holds it.

Assigned, re-pointed and released numbers get their Voice URL and status
callback at this deployment and a Voice Fallback URL that forwards to the
client's phone (the Forward twimlet) or, in the pool, says the number is not
in service. Checked through the twilio library against the simulator; a
Twilio outage delays the update but never loses it.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from services.router.app import runtime_of
from services.router.twilio_api import NumberWebhooks
from services.router.twilio_sync import retry_delay
from services.router.twiml import NOT_IN_SERVICE
from services.router.webhooks import Deployment, forward_twimlet, message_twimlet
from tests.router.actions import (
    AUTH,
    BASE,
    AppFactory,
    assign_number,
    create_client,
    held_number,
    wait_synced,
)
from tests.router.conftest import twilio_settings
from tests.support import free_port, wait_until
from tests.twilio_sim.simulator import Simulator

PHONE = "+14155559999"
OTHER_PHONE = "+12125559999"
POOLED_FALLBACK = message_twimlet(NOT_IN_SERVICE)


def at_twilio(simulator: Simulator, phone_number: str) -> Any:
    [number] = simulator.client().incoming_phone_numbers.list(phone_number=phone_number)
    return number


def test_forward_twimlet_url_encodes_the_phone_number() -> None:
    assert forward_twimlet("+14155550100") == (
        "https://twimlets.com/forward?PhoneNumber=%2B14155550100"
    )


def test_deployment_points_numbers_at_itself_with_the_right_fallback() -> None:
    deployment = Deployment("https://calls.example.com/", POOLED_FALLBACK)
    assert deployment.webhooks_for("+14155550100") == NumberWebhooks(
        voice_url="https://calls.example.com/api/twilio/webhook",
        status_callback="https://calls.example.com/api/twilio/status",
        voice_fallback_url="https://twimlets.com/forward?PhoneNumber=%2B14155550100",
    )
    assert deployment.pooled.voice_fallback_url == POOLED_FALLBACK
    assert "not+in+service" in POOLED_FALLBACK


def test_retries_back_off_exponentially_up_to_a_ceiling() -> None:
    assert [retry_delay(n, 600) for n in range(4)] == [2, 4, 8, 16]
    assert retry_delay(50, 600) == 600


def test_assigned_number_falls_back_to_the_forward_twimlet_dialing_its_client(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    client = create_client(twilio_http, forwardTo=PHONE)
    phone = assign_number(twilio_http, client["id"], areaCode="415")["phoneNumber"]

    held = wait_synced(twilio_http, phone)

    number = at_twilio(simulator, phone)
    assert held["sid"] == number.sid
    assert number.voice_url == f"{BASE}/api/twilio/webhook"
    assert number.voice_method == "POST"
    assert number.status_callback == f"{BASE}/api/twilio/status"
    assert number.voice_fallback_url == forward_twimlet(PHONE)
    assert number.voice_fallback_method == "POST"


def test_repointed_number_falls_back_to_the_new_phone(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    client = create_client(twilio_http, forwardTo=PHONE)
    phone = assign_number(twilio_http, client["id"], areaCode="415")["phoneNumber"]
    wait_synced(twilio_http, phone)

    response = twilio_http.patch(
        f"/api/clients/{client['id']}/numbers/{phone}",
        json={"forwardTo": OTHER_PHONE},
        headers=AUTH,
    )
    assert response.status_code == 200
    wait_synced(twilio_http, phone)

    assert at_twilio(simulator, phone).voice_fallback_url == forward_twimlet(OTHER_PHONE)


def test_released_number_falls_back_to_not_in_service(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    client = create_client(twilio_http, forwardTo=PHONE)
    phone = assign_number(twilio_http, client["id"], areaCode="415")["phoneNumber"]
    wait_synced(twilio_http, phone)

    response = twilio_http.delete(f"/api/clients/{client['id']}/numbers/{phone}", headers=AUTH)
    assert response.status_code == 204
    wait_synced(twilio_http, phone)

    number = at_twilio(simulator, phone)
    assert number.voice_fallback_url == POOLED_FALLBACK
    assert number.voice_url == f"{BASE}/api/twilio/webhook"


def test_deleted_clients_numbers_fall_back_to_not_in_service(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    client = create_client(twilio_http, forwardTo=PHONE)
    phone = assign_number(twilio_http, client["id"], areaCode="415")["phoneNumber"]
    wait_synced(twilio_http, phone)

    assert twilio_http.delete(f"/api/clients/{client['id']}", headers=AUTH).status_code == 200
    wait_synced(twilio_http, phone)

    assert at_twilio(simulator, phone).voice_fallback_url == POOLED_FALLBACK


def test_number_the_business_already_owned_is_found_by_its_phone_number(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    phone = "+19715559001"
    owned = simulator.own_number(phone, "https://old-provider.example.com/voice")
    client = create_client(twilio_http, forwardTo=PHONE)

    assign_number(twilio_http, client["id"], phoneNumber=phone)
    held = wait_synced(twilio_http, phone)

    assert held["sid"] == owned["sid"]
    number = at_twilio(simulator, phone)
    assert number.voice_url == f"{BASE}/api/twilio/webhook"
    assert number.voice_fallback_url == forward_twimlet(PHONE)


def test_sid_twilio_no_longer_knows_is_looked_up_again(
    twilio_http: FlaskClient, simulator: Simulator
) -> None:
    client = create_client(twilio_http, forwardTo=PHONE)
    phone = assign_number(twilio_http, client["id"], areaCode="415")["phoneNumber"]
    old_sid = wait_synced(twilio_http, phone)["sid"]
    # The account loses the number and gets it back under a new sid (a
    # restarted simulator, a number ported out and in again).
    simulator.client().incoming_phone_numbers(old_sid).delete()
    new_sid = simulator.own_number(phone, "https://elsewhere.example.com/voice")["sid"]

    response = twilio_http.patch(
        f"/api/clients/{client['id']}/numbers/{phone}",
        json={"forwardTo": OTHER_PHONE},
        headers=AUTH,
    )
    assert response.status_code == 200

    assert wait_synced(twilio_http, phone)["sid"] == new_sid != old_sid
    number = at_twilio(simulator, phone)
    assert number.voice_url == f"{BASE}/api/twilio/webhook"
    assert number.voice_fallback_url == forward_twimlet(OTHER_PHONE)


def test_twilio_outage_delays_the_update_but_never_loses_it(
    make_app: AppFactory, simulator: Simulator
) -> None:
    phone = "+19715559002"
    simulator.own_number(phone, "https://old-provider.example.com/voice")
    unreachable = {**twilio_settings(simulator)}
    unreachable["twilio_api_base_url"] = f"http://127.0.0.1:{free_port()}"
    down_app = make_app(**unreachable)
    down = down_app.test_client()
    client = create_client(down, forwardTo=PHONE)

    response = down.post(
        f"/api/clients/{client['id']}/numbers", json={"phoneNumber": phone}, headers=AUTH
    )

    assert response.status_code == 201
    failing = wait_until(
        lambda: (lambda n: n if n and n["twilioSync"]["attempts"] >= 1 else None)(
            held_number(down, phone)
        ),
        message="a failed sync attempt",
    )
    assert failing["twilioSync"]["status"] == "pending"
    assert "could not be reached" in failing["twilioSync"]["lastError"]
    assert at_twilio(simulator, phone).voice_url == "https://old-provider.example.com/voice"

    # Twilio is back (here: a router that reaches it, on the same database,
    # replacing the one that could not).
    runtime_of(down_app).twilio_sync.stop()  # type: ignore[union-attr]
    back = make_app(**twilio_settings(simulator), twilio_sync_interval_seconds=0.5)
    wait_synced(back.test_client(), phone, timeout=30.0)
    number = at_twilio(simulator, phone)
    assert number.voice_url == f"{BASE}/api/twilio/webhook"
    assert number.voice_fallback_url == forward_twimlet(PHONE)


def test_new_public_url_reaches_every_number_at_start_up(
    make_app: AppFactory, simulator: Simulator
) -> None:
    first = make_app(**twilio_settings(simulator))
    http = first.test_client()
    client = create_client(http, forwardTo=PHONE)
    assigned = assign_number(http, client["id"], areaCode="415")["phoneNumber"]
    pooled = http.post(
        "/api/twilio/purchase-number", json={"areaCode": "415"}, headers=AUTH
    ).get_json()["phoneNumber"]
    wait_synced(http, assigned)
    runtime_of(first).twilio_sync.stop()  # type: ignore[union-attr]

    moved = make_app(public_base_url="https://new.example.com", **twilio_settings(simulator))
    for phone in (assigned, pooled):
        wait_synced(moved.test_client(), phone)

    assert at_twilio(simulator, assigned).voice_url == "https://new.example.com/api/twilio/webhook"
    assert at_twilio(simulator, assigned).voice_fallback_url == forward_twimlet(PHONE)
    assert (
        at_twilio(simulator, pooled).status_callback == "https://new.example.com/api/twilio/status"
    )
    assert at_twilio(simulator, pooled).voice_fallback_url == POOLED_FALLBACK


@pytest.mark.parametrize("action", ["assign", "release"])
def test_router_without_twilio_keeps_the_request_for_one_that_has_it(
    make_app: AppFactory, simulator: Simulator, action: str
) -> None:
    phone = "+19715559003" if action == "assign" else "+19715559004"
    simulator.own_number(phone, "https://old-provider.example.com/voice")
    offline = make_app().test_client()
    client = create_client(offline, forwardTo=PHONE)
    assign_number(offline, client["id"], phoneNumber=phone)
    if action == "release":
        response = offline.delete(f"/api/clients/{client['id']}/numbers/{phone}", headers=AUTH)
        assert response.status_code == 204
    assert held_number(offline, phone)["twilioSync"]["status"] == "pending"  # type: ignore[index]

    online = make_app(**twilio_settings(simulator)).test_client()
    wait_synced(online, phone)

    expected = forward_twimlet(PHONE) if action == "assign" else POOLED_FALLBACK
    assert at_twilio(simulator, phone).voice_fallback_url == expected
