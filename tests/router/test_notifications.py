"""GET / PUT /api/clients/<id>/notifications against real PostgreSQL and Kafka.

Settings are stored, read back with defaults, audited (never with the
webhook's secret) and published in `client.settings-changed` with the secret
for the reporting service; the secret is answered once, by the PUT that made
it. Every bad payload is a 400 naming the field and the reason and changes
nothing; a client key sees only its own client's settings.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from services.router.dialing import DialPolicy
from services.router.notifications import Notifications, WebhookRules
from switchboard import events
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.router.actions import AUTH, AppFactory, audit_entries, bearer, create_client, issue_key
from tests.support import wait_until

# Outside development a webhook must resolve to a public address; the tests
# have no DNS, so they name public hosts by address.
HOOK = "https://93.184.215.14/hooks/calls"
SETTINGS: dict[str, Any] = {
    "missedCall": {
        "email": ["owner@smile.example"],
        "sms": ["+14155559999"],
        "webhook": {"url": HOOK},
        "quietHours": {"start": "22:00", "end": "07:00"},
    },
    "reports": {"weekly": True, "monthly": True, "email": ["owner@smile.example"]},
}
ALL_OFF = {
    "missedCall": {"email": [], "sms": [], "webhook": None, "quietHours": None},
    "reports": {"weekly": False, "monthly": False, "email": []},
}


def path(client_id: str) -> str:
    return f"/api/clients/{client_id}/notifications"


@pytest.fixture
def client_id(http: FlaskClient) -> str:
    return str(create_client(http, forwardTo="+14155558888", timezone="America/New_York")["id"])


def put(http: FlaskClient, client_id: str, body: Any, headers: dict[str, str] = AUTH) -> Any:
    return http.put(path(client_id), json=body, headers=headers)


def settings_events(
    router_app: Flask, kafka_bootstrap: str, topics: Topics, client_id: str, expect: int
) -> list[dict[str, Any]]:
    """The client's settings-changed events on client-events, oldest first, each valid."""
    store = runtime_of(router_app).store
    wait_until(lambda: store.outbox_size() == 0, timeout=15, message="outbox drained")
    found = [
        m["value"]
        for m in read_topic(kafka_bootstrap, topics.client_events, expect=expect)
        if m["key"] == client_id
    ]
    for event in found:
        events.validate(event)
        assert event["type"] == "client.settings-changed"
    return found


def test_a_client_without_settings_has_alerts_and_reports_off(
    http: FlaskClient, client_id: str
) -> None:
    response = http.get(path(client_id), headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == ALL_OFF


def test_settings_are_stored_and_read_back_without_the_secret(
    http: FlaskClient, client_id: str
) -> None:
    response = put(http, client_id, SETTINGS)
    assert response.status_code == 200, response.get_json()
    answered = response.get_json()
    secret = answered["missedCall"]["webhook"].pop("secret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert answered == SETTINGS
    assert http.get(path(client_id), headers=AUTH).get_json() == SETTINGS


def test_the_webhook_secret_is_answered_once_and_renewed_only_with_a_new_url(
    router_app: Flask, http: FlaskClient, client_id: str, kafka_bootstrap: str, topics: Topics
) -> None:
    first = put(http, client_id, SETTINGS).get_json()["missedCall"]["webhook"]["secret"]
    assert (
        "secret" not in http.get(path(client_id), headers=AUTH).get_json()["missedCall"]["webhook"]
    )
    # The same URL again (say, other emails): the secret stays and is not shown.
    again = {**SETTINGS, "reports": {"weekly": False}}
    unchanged = put(http, client_id, again).get_json()["missedCall"]["webhook"]
    assert unchanged == {"url": HOOK}
    moved = {**SETTINGS, "missedCall": {"webhook": {"url": "https://1.1.1.1/alerts"}}}
    second = put(http, client_id, moved).get_json()["missedCall"]["webhook"]["secret"]
    assert second.startswith("whsec_") and second != first

    published = settings_events(router_app, kafka_bootstrap, topics, client_id, expect=4)
    hooks = [e["data"]["notifications"]["missedCall"]["webhook"] for e in published]
    assert hooks == [
        None,  # the client's creation
        {"url": HOOK, "secret": first},
        {"url": HOOK, "secret": first},
        {"url": "https://1.1.1.1/alerts", "secret": second},
    ]


def test_a_change_is_audited_without_the_secret(http: FlaskClient, client_id: str) -> None:
    secret = put(http, client_id, SETTINGS).get_json()["missedCall"]["webhook"]["secret"]
    put(http, client_id, {"missedCall": {"email": ["desk@smile.example"]}})
    entries = audit_entries(http, action="client.notifications-set")
    assert [e["targetId"] for e in entries] == [client_id, client_id]
    latest, first = entries
    assert first["actor"] == "admin" and first["clientId"] == client_id
    assert first["details"]["previous"] is None
    assert first["details"]["notifications"] == SETTINGS
    assert first["details"]["webhookSecretIssued"] is True
    assert latest["details"]["previous"] == SETTINGS
    assert latest["details"]["notifications"]["missedCall"]["email"] == ["desk@smile.example"]
    assert latest["details"]["webhookSecretIssued"] is False
    assert secret not in str(entries)


def test_settings_are_published_and_kept_by_later_client_changes(
    router_app: Flask, http: FlaskClient, client_id: str, kafka_bootstrap: str, topics: Topics
) -> None:
    secret = put(http, client_id, SETTINGS).get_json()["missedCall"]["webhook"]["secret"]
    patched = http.patch(f"/api/clients/{client_id}", json={"name": "Smile Dental"}, headers=AUTH)
    assert patched.status_code == 200
    created, changed, renamed = settings_events(
        router_app, kafka_bootstrap, topics, client_id, expect=3
    )
    assert created["data"]["notifications"] == ALL_OFF
    expected = {
        **SETTINGS,
        "missedCall": {**SETTINGS["missedCall"], "webhook": {"url": HOOK, "secret": secret}},
    }
    assert changed["data"]["notifications"] == expected
    assert changed["data"]["timezone"] == "America/New_York"
    # The compacted topic keeps only the newest event: it must still hold the settings.
    assert renamed["data"]["name"] == "Smile Dental"
    assert renamed["data"]["notifications"] == expected


def test_a_deleted_client_publishes_its_settings_off(
    router_app: Flask, http: FlaskClient, client_id: str, kafka_bootstrap: str, topics: Topics
) -> None:
    put(http, client_id, SETTINGS)
    assert http.delete(f"/api/clients/{client_id}", headers=AUTH).status_code == 200
    last = settings_events(router_app, kafka_bootstrap, topics, client_id, expect=3)[-1]
    assert last["data"]["deleted"] is True
    assert last["data"]["notifications"] == ALL_OFF


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ([], "request body", "JSON object"),
        ({"alerts": {}}, "alerts", "unknown field"),
        ({"missedCall": {"emails": []}}, "missedCall.emails", "unknown field"),
        ({"reports": {"daily": True}}, "reports.daily", "unknown field"),
        ({"missedCall": {"quietHours": {"start": "22:00", "end": "07:00", "tz": "UTC"}}},
         "missedCall.quietHours.tz", "unknown field"),
        ({"missedCall": {"email": "owner@smile.example"}}, "missedCall.email", "must be a list"),
        ({"missedCall": {"email": ["owner"]}}, "missedCall.email[0]", "not an email address"),
        ({"missedCall": {"email": ["a@b"]}}, "missedCall.email[0]", "not an email address"),
        ({"missedCall": {"email": ["o wner@smile.example"]}}, "missedCall.email[0]", "email"),
        ({"missedCall": {"email": [7]}}, "missedCall.email[0]", "email address"),
        ({"missedCall": {"email": ["a@x.example", "A@x.example"]}}, "email[1]", "listed twice"),
        ({"missedCall": {"email": [f"o{i}@x.example" for i in range(11)]}}, "email", "at most 10"),
        ({"reports": {"email": ["owner@@smile.example"]}}, "reports.email[0]", "email address"),
        ({"reports": {"weekly": True}}, "reports.email", "at least one address"),
        ({"reports": {"monthly": "yes", "email": ["o@x.example"]}}, "reports.monthly", "true or"),
        ({"missedCall": {"sms": ["4155559999"]}}, "missedCall.sms[0]", "E.164"),
        ({"missedCall": {"sms": ["+442079460000"]}}, "missedCall.sms[0]", "calls may only go to"),
        ({"missedCall": {"sms": ["+19005550100"]}}, "missedCall.sms[0]", "premium-rate"),
        ({"missedCall": {"sms": ["+14155559999"] * 2}}, "missedCall.sms[1]", "listed twice"),
        ({"missedCall": {"webhook": {}}}, "missedCall.webhook.url", "is required"),
        ({"missedCall": {"webhook": "https://1.1.1.1/"}}, "missedCall.webhook", "JSON object"),
        ({"missedCall": {"webhook": {"url": HOOK, "secret": "whsec_mine"}}},
         "missedCall.webhook.secret", "cannot be set"),
        ({"missedCall": {"webhook": {"url": HOOK, "events": []}}},
         "missedCall.webhook.events", "unknown field"),
        ({"missedCall": {"webhook": {"url": "http://93.184.215.14/hooks"}}},
         "missedCall.webhook.url", "must be https (http only in development)"),
        ({"missedCall": {"webhook": {"url": "ftp://93.184.215.14/hooks"}}},
         "missedCall.webhook.url", "must be an https URL"),
        ({"missedCall": {"webhook": {"url": "crm.example/hooks"}}},
         "missedCall.webhook.url", "must be an https URL"),
        ({"missedCall": {"webhook": {"url": "https://user:pw@93.184.215.14/"}}},
         "missedCall.webhook.url", "user name or password"),
        ({"missedCall": {"webhook": {"url": "https://93.184.215.14:99999/"}}},
         "missedCall.webhook.url", "is not a URL"),
        ({"missedCall": {"webhook": {"url": "https://10.1.2.3/hooks"}}},
         "missedCall.webhook.url", "private, loopback or link-local address (10.1.2.3)"),
        ({"missedCall": {"webhook": {"url": "https://192.168.0.10/hooks"}}},
         "missedCall.webhook.url", "private, loopback or link-local"),
        ({"missedCall": {"webhook": {"url": "https://localhost:8443/hooks"}}},
         "missedCall.webhook.url", "private, loopback or link-local address (127.0.0.1)"),
        ({"missedCall": {"webhook": {"url": "https://[::1]/hooks"}}},
         "missedCall.webhook.url", "private, loopback or link-local address (::1)"),
        ({"missedCall": {"webhook": {"url": "https://169.254.169.254/latest"}}},
         "missedCall.webhook.url", "link-local address (169.254.169.254)"),
        ({"missedCall": {"webhook": {"url": "https://[::ffff:10.0.0.1]/"}}},
         "missedCall.webhook.url", "private, loopback or link-local"),
        ({"missedCall": {"webhook": {"url": "https://crm.invalid/hooks"}}},
         "missedCall.webhook.url", "does not resolve"),
        ({"missedCall": {"quietHours": {"start": "22:00", "end": "25:00"}}},
         "missedCall.quietHours.end", "from 00:00 to 23:59"),
        ({"missedCall": {"quietHours": {"start": "22:00"}}},
         "missedCall.quietHours.end", "HH:MM"),
        ({"missedCall": {"quietHours": {"start": "07:00", "end": "07:00"}}},
         "missedCall.quietHours", "another time"),
    ],
)  # fmt: skip
def test_a_bad_payload_is_a_400_naming_field_and_reason_and_changes_nothing(
    http: FlaskClient, client_id: str, body: Any, field: str, reason: str
) -> None:
    put(http, client_id, SETTINGS)
    before = http.get(path(client_id), headers=AUTH).get_json()
    response = put(http, client_id, body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] in ("invalid_field", "unknown_field", "number_not_allowed", "invalid_body")
    assert field in error["message"] and reason in error["message"], error["message"]
    assert http.get(path(client_id), headers=AUTH).get_json() == before
    assert len(audit_entries(http, action="client.notifications-set")) == 1


def test_in_development_a_webhook_may_be_http_on_a_local_receiver(
    make_app: AppFactory,
) -> None:
    http = make_app(development=True).test_client()
    client_id = create_client(http)["id"]
    local = {"missedCall": {"webhook": {"url": "http://127.0.0.1:9100/hooks"}}}
    response = put(http, client_id, local)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["missedCall"]["webhook"]["url"] == "http://127.0.0.1:9100/hooks"


def test_a_client_key_reads_and_sets_only_its_own_clients_settings(
    http: FlaskClient, client_id: str
) -> None:
    mine = bearer(issue_key(http, client_id)["key"])
    other = create_client(http, name="Other Co")["id"]
    response = put(http, client_id, SETTINGS, headers=mine)
    assert response.status_code == 200, response.get_json()
    assert "secret" in response.get_json()["missedCall"]["webhook"]
    assert http.get(path(client_id), headers=mine).get_json() == SETTINGS
    for answer in (
        http.get(path(other), headers=mine),
        put(http, other, SETTINGS, headers=mine),
    ):
        assert answer.status_code == 404
        assert answer.get_json()["error"]["code"] == "client_not_found"
    assert http.get(path(other), headers=AUTH).get_json() == ALL_OFF
    entries = audit_entries(http, action="client.notifications-set")
    assert len(entries) == 1
    assert entries[0]["actor"].startswith(f"client:{client_id}:key:")


def test_the_settings_need_a_token_that_was_issued(http: FlaskClient, client_id: str) -> None:
    assert http.get(path(client_id)).status_code == 401
    assert put(http, client_id, SETTINGS).status_code == 200
    forged = bearer("sbk_" + "A" * 43)
    assert http.get(path(client_id), headers=forged).status_code == 403
    assert put(http, client_id, ALL_OFF, headers=forged).status_code == 403


@pytest.mark.parametrize("raw_id", ["0b6f3f4e-8d39-4a4e-9a53-2f1c1f6d0a11", "not-a-uuid"])
def test_an_unknown_client_is_a_404(http: FlaskClient, raw_id: str) -> None:
    for response in (http.get(path(raw_id), headers=AUTH), put(http, raw_id, SETTINGS)):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "client_not_found"


def test_an_empty_put_turns_everything_off(http: FlaskClient, client_id: str) -> None:
    put(http, client_id, SETTINGS)
    response = put(http, client_id, {})
    assert response.status_code == 200 and response.get_json() == ALL_OFF
    assert http.get(path(client_id), headers=AUTH).get_json() == ALL_OFF


# ---- the webhook rule, with a resolver standing in for DNS


def resolver(table: dict[str, list[str]]) -> Any:
    return lambda host: table.get(host, [])


def test_a_host_name_is_judged_by_every_address_it_resolves_to() -> None:
    rules = WebhookRules(
        resolver=resolver(
            {"crm.example": ["93.184.215.14"], "sneaky.example": ["93.184.215.14", "10.0.0.7"]}
        )
    )
    assert rules.refusal("https://crm.example/hooks/calls") is None
    refusal = rules.refusal("https://sneaky.example/hooks")
    assert refusal is not None and "(10.0.0.7)" in refusal
    assert rules.refusal("https://100.64.0.1/hooks") is not None  # shared (carrier NAT) space


def test_the_example_of_the_documentation_parses() -> None:
    rules = WebhookRules(resolver=resolver({"crm.example": ["93.184.215.14"]}))
    documented = {
        **SETTINGS,
        "missedCall": {**SETTINGS["missedCall"], "webhook": {"url": "https://crm.example/hooks"}},
    }
    parsed = Notifications.parse(documented, rules, DialPolicy())
    assert parsed.to_json() == documented
    assert parsed.alerts_on and not Notifications().alerts_on
