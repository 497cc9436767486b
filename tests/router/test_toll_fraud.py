"""Toll fraud: where router lets calls go, and how many outbound calls a client may place.

The dialing rules are pure (services/router/dialing.py); the API tests go
through the Flask app against real PostgreSQL, with the Twilio simulator as
Twilio, and show that a refused number or a reached cap changes nothing but
the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest
from flask import Flask
from flask.testing import FlaskClient
from phonenumbers import PhoneNumberType

from services.router.config import Config
from services.router.dialing import DialPolicy, account_country, parse_countries
from services.router.directory import ClientSettings
from services.router.management import own_cap_kept
from switchboard.auth import Principal
from switchboard.http import ApiError
from switchboard.settings import ConfigError, load_env_file
from tests.router.actions import (
    AUTH,
    AppFactory,
    assign_number,
    audit_entries,
    bearer,
    create_client,
    issue_key,
)
from tests.router.conftest import twilio_settings
from tests.twilio_sim.simulator import Simulator

US_ONLY = DialPolicy()
PHONE = "+14155559999"
CALLEE = "+13125550123"
# Nothing listens there: the simulator's fetch of a placed call's TwiML fails at once.
NOWHERE = "http://127.0.0.1:9"


def example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ---- the rules (pure)


@pytest.mark.parametrize(
    "number",
    [
        "+19005551234",  # NANP pay-per-call
        "+19765551234",  # NANP pay-per-call
        "+881612345678",  # global satellite (Iridium)
        "+882160012345",  # international networks
        "+883510012345",  # international networks
        "+979123456789",  # international premium rate
    ],
)
def test_premium_and_satellite_prefixes_are_refused_wherever_calls_may_go(number: str) -> None:
    everywhere = DialPolicy.of(phonenumbers.SUPPORTED_REGIONS)
    assert everywhere.refusal(number) is not None
    assert US_ONLY.refusal(number) is not None


@pytest.mark.parametrize(
    ("region", "kind", "says"),
    [
        ("GB", PhoneNumberType.PREMIUM_RATE, "premium-rate"),
        ("FR", PhoneNumberType.PREMIUM_RATE, "premium-rate"),
        ("AU", PhoneNumberType.SHARED_COST, "shared-cost"),
        ("CA", PhoneNumberType.UAN, "universal access"),
        ("DE", PhoneNumberType.UAN, "universal access"),
    ],
)
def test_costly_kinds_of_number_are_refused_even_in_an_allowed_country(
    region: str, kind: int, says: str
) -> None:
    policy = DialPolicy.of({region})
    reason = policy.refusal(example(region, kind))
    assert reason is not None and says in reason
    assert policy.refusal(example(region, PhoneNumberType.MOBILE)) is None


@pytest.mark.parametrize(
    ("number", "country"),
    [("+16135550100", "CA"), ("+18765550100", "JM"), ("+442071838750", "GB")],
)
def test_numbers_outside_the_allowed_countries_are_refused_naming_the_country(
    number: str, country: str
) -> None:
    reason = US_ONLY.refusal(number)
    assert reason is not None and country in reason
    assert DialPolicy.of({"US", country}).refusal(number) is None


def test_ordinary_numbers_of_the_allowed_country_may_be_dialed() -> None:
    for number in (PHONE, CALLEE, "+14155550100", "+18005550100"):
        assert US_ONLY.refusal(number) is None


def test_a_number_no_country_claims_is_refused() -> None:
    assert US_ONLY.refusal("+19995550123") is not None


def test_countries_are_iso_codes_phonenumbers_knows() -> None:
    assert parse_countries(" us, ca ,") == {"US", "CA"}
    for raw in ("", "USA", "US,XX", "001"):
        with pytest.raises(ValueError):
            parse_countries(raw)


def test_the_account_country_comes_from_the_account_number_else_us() -> None:
    assert account_country("+16135550100") == "CA"
    assert account_country("+442071838750") == "GB"
    assert account_country("+14155550100") == "US"
    assert account_country(None) == "US"
    assert account_country("not a number") == "US"


# ---- configuration


@pytest.fixture
def router_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    load_env_file()
    for name in ("ROUTER_ALLOWED_COUNTRIES", "ROUTER_DAILY_OUTBOUND_CAP", "TWILIO_PHONE_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHBOARD_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", "postgresql://router@db:5432/router")
    monkeypatch.setenv("ADMIN_API_TOKEN", "a-test-admin-token-long-enough-for-any-check")
    yield monkeypatch


def test_allowed_countries_and_cap_default_to_the_account_country_and_200(
    router_env: pytest.MonkeyPatch,
) -> None:
    config = Config.from_env()
    assert (config.allowed_countries, config.daily_outbound_cap) == ({"US"}, 200)
    router_env.setenv("TWILIO_PHONE_NUMBER", "+16135550100")
    assert Config.from_env().allowed_countries == {"CA"}


def test_allowed_countries_and_cap_are_read_from_the_environment(
    router_env: pytest.MonkeyPatch,
) -> None:
    router_env.setenv("TWILIO_PHONE_NUMBER", "+16135550100")
    router_env.setenv("ROUTER_ALLOWED_COUNTRIES", "US,CA,GB")
    router_env.setenv("ROUTER_DAILY_OUTBOUND_CAP", "15")
    config = Config.from_env()
    assert (config.allowed_countries, config.daily_outbound_cap) == ({"US", "CA", "GB"}, 15)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ROUTER_ALLOWED_COUNTRIES", "US,Narnia"),
        ("ROUTER_DAILY_OUTBOUND_CAP", "-1"),
        ("ROUTER_DAILY_OUTBOUND_CAP", "lots"),
    ],
)
def test_bad_toll_fraud_settings_stop_start_up_naming_the_variable(
    router_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    router_env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Config.from_env()


# ---- forwardTo through the API


def refused(response: Any, field: str) -> None:
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "number_not_allowed"
    assert error["message"].startswith(field)


def test_client_forward_to_is_refused_outside_the_rules_and_nothing_is_created(
    http: FlaskClient,
) -> None:
    for number in ("+19005551234", "+16135550100", "+881612345678"):
        response = http.post(
            "/api/clients", json={"name": "Fraud Co", "forwardTo": number}, headers=AUTH
        )
        refused(response, "forwardTo")
    assert http.get("/api/clients", headers=AUTH).get_json()["clients"] == []
    assert audit_entries(http) == []


def test_client_forward_to_update_is_refused_and_the_client_is_unchanged(
    http: FlaskClient,
) -> None:
    client = create_client(http, forwardTo=PHONE)
    url = f"/api/clients/{client['id']}"
    refused(http.patch(url, json={"forwardTo": "+19765551234"}, headers=AUTH), "forwardTo")
    refused(
        http.put(url, json={"name": "Acme", "forwardTo": "+442071838750"}, headers=AUTH),
        "forwardTo",
    )
    assert http.get(url, headers=AUTH).get_json()["forwardTo"] == PHONE
    # Other settings of the client still change.
    assert http.patch(url, json={"name": "Acme 2"}, headers=AUTH).status_code == 200


def test_a_country_allowed_by_configuration_may_be_forwarded_to(make_app: AppFactory) -> None:
    http = make_app(allowed_countries=frozenset({"US", "CA"})).test_client()
    client = create_client(http, forwardTo="+16135550100")
    assert client["forwardTo"] == "+16135550100"


def test_number_forward_to_is_refused_on_assignment_and_on_update(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE)
    numbers = f"/api/clients/{client['id']}/numbers"
    response = http.post(
        numbers, json={"phoneNumber": "+14155550100", "forwardTo": "+19005551234"}, headers=AUTH
    )
    refused(response, "forwardTo")
    assert http.get(numbers, headers=AUTH).get_json()["numbers"] == []

    assign_number(http, client["id"], phoneNumber="+14155550100")
    response = http.patch(
        f"{numbers}/+14155550100", json={"forwardTo": "+883510012345"}, headers=AUTH
    )
    refused(response, "forwardTo")
    number = http.get(f"{numbers}/+14155550100", headers=AUTH).get_json()
    assert number["forwardTo"] == PHONE


# ---- outbound calls through the API


def calls_to(simulator: Simulator, number: str) -> int:
    return len(simulator.client().calls.list(to=number))


def make_call(http: FlaskClient, client_id: str, to: str = CALLEE, **headers: str) -> Any:
    body = {"fromNumber": "+14155550100", "toNumber": to, "clientId": client_id, "message": "hi"}
    return http.post("/api/twilio/make-call", json=body, headers=headers or AUTH)


def outbound_router(make_app: AppFactory, simulator: Simulator, **overrides: Any) -> Flask:
    return make_app(public_base_url=NOWHERE, **twilio_settings(simulator), **overrides)


def test_outbound_call_to_a_premium_or_foreign_number_is_refused_before_twilio_is_asked(
    make_app: AppFactory, simulator: Simulator
) -> None:
    http = outbound_router(make_app, simulator).test_client()
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber="+14155550100")
    for number in ("+19005551234", "+979123456789", "+447700900123"):
        before = calls_to(simulator, number)
        refused(make_call(http, client["id"], to=number), "toNumber")
        assert calls_to(simulator, number) == before
    assert audit_entries(http, action="call.placed") == []


def test_outbound_calls_past_the_daily_cap_are_429_and_audited(
    make_app: AppFactory, simulator: Simulator
) -> None:
    http = outbound_router(make_app, simulator, daily_outbound_cap=2).test_client()
    client = create_client(http, forwardTo=PHONE)
    assign_number(http, client["id"], phoneNumber="+14155550100")
    key = issue_key(http, client["id"])["key"]
    callee = "+13125550177"
    before = calls_to(simulator, callee)

    assert make_call(http, client["id"], to=callee).status_code == 201
    assert make_call(http, client["id"], to=callee, **bearer(key)).status_code == 201
    response = make_call(http, client["id"], to=callee, **bearer(key))

    assert response.status_code == 429
    error = response.get_json()["error"]
    assert error["code"] == "outbound_cap_reached" and "2" in error["message"]
    assert calls_to(simulator, callee) == before + 2
    assert len(audit_entries(http, action="call.placed")) == 2
    [entry] = audit_entries(http, action="call.refused")
    assert entry["clientId"] == client["id"]
    assert entry["actor"].startswith(f"client:{client['id']}:key:")
    assert entry["details"] == {
        "reason": "outbound_cap_reached",
        "dailyOutboundCap": 2,
        "fromNumber": "+14155550100",
        "toNumber": callee,
    }


def test_the_cap_counts_per_client_and_a_client_setting_overrides_it(
    make_app: AppFactory, simulator: Simulator
) -> None:
    http = outbound_router(make_app, simulator, daily_outbound_cap=1).test_client()
    capped = create_client(http, forwardTo=PHONE)
    assign_number(http, capped["id"], phoneNumber="+14155550100")
    other = create_client(http, name="Other", forwardTo=PHONE)
    assign_number(http, other["id"], phoneNumber="+14155550101")

    assert make_call(http, capped["id"]).status_code == 201
    assert make_call(http, capped["id"]).status_code == 429
    other_call = {
        "fromNumber": "+14155550101",
        "toNumber": CALLEE,
        "clientId": other["id"],
        "message": "hi",
    }
    assert http.post("/api/twilio/make-call", json=other_call, headers=AUTH).status_code == 201

    raised = http.patch(
        f"/api/clients/{capped['id']}", json={"dailyOutboundCap": 2}, headers=AUTH
    )
    assert raised.status_code == 200 and raised.get_json()["dailyOutboundCap"] == 2
    assert make_call(http, capped["id"]).status_code == 201
    assert make_call(http, capped["id"]).status_code == 429

    stopped = create_client(http, name="No calls", forwardTo=PHONE, dailyOutboundCap=0)
    assign_number(http, stopped["id"], phoneNumber="+14155550102")
    stopped_call = {**other_call, "fromNumber": "+14155550102", "clientId": stopped["id"]}
    response = http.post("/api/twilio/make-call", json=stopped_call, headers=AUTH)
    assert response.status_code == 429


def test_a_call_twilio_refuses_does_not_count_against_the_cap(
    make_app: AppFactory, simulator: Simulator
) -> None:
    broken = make_app(
        public_base_url=NOWHERE,
        daily_outbound_cap=1,
        **{**twilio_settings(simulator), "twilio_auth_token": "not-the-token"},
    ).test_client()
    client = create_client(broken, forwardTo=PHONE)
    assign_number(broken, client["id"], phoneNumber="+14155550100")
    response = make_call(broken, client["id"])
    assert response.status_code >= 400 and response.status_code != 429

    working = outbound_router(make_app, simulator, daily_outbound_cap=1).test_client()
    assert make_call(working, client["id"]).status_code == 201


def test_a_client_key_neither_raises_nor_resets_its_cap_and_the_admin_may() -> None:
    current = ClientSettings("Acme", daily_outbound_cap=5)
    key = Principal("client", "c1", "k1")
    raised = ClientSettings("Acme", daily_outbound_cap=5000)
    with pytest.raises(ApiError) as caught:
        own_cap_kept(key, {"dailyOutboundCap": 5000}, raised, current)
    assert caught.value.status == 403
    reset = ClientSettings("Acme 2")
    assert own_cap_kept(key, {"name": "Acme 2"}, reset, current).daily_outbound_cap == 5
    assert own_cap_kept(Principal("admin"), {"dailyOutboundCap": 5000}, raised, current) == raised


def test_only_the_admin_may_change_a_clients_daily_cap(http: FlaskClient) -> None:
    client = create_client(http, forwardTo=PHONE, dailyOutboundCap=5)
    url = f"/api/clients/{client['id']}"
    key = bearer(issue_key(http, client["id"])["key"])

    response = http.patch(url, json={"dailyOutboundCap": 5000}, headers=key)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    # A whole client from the key that leaves the cap out keeps it.
    replaced = http.put(url, json={"name": "Acme", "forwardTo": PHONE}, headers=key)
    assert replaced.status_code == 200 and replaced.get_json()["dailyOutboundCap"] == 5
    assert http.patch(url, json={"name": "Acme 2"}, headers=key).status_code == 200

    lowered = http.patch(url, json={"dailyOutboundCap": 3}, headers=AUTH)
    assert lowered.status_code == 200
    assert http.get(url, headers=AUTH).get_json()["dailyOutboundCap"] == 3
