"""The management API over a real PostgreSQL: clients, numbers, auth, bad input."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.router.app import runtime_of
from tests.router.actions import ADMIN_TOKEN, AUTH, assign_number, create_client


def test_created_client_is_returned_listed_and_fetched(http: FlaskClient) -> None:
    response = http.post(
        "/api/clients",
        json={"name": "Acme Plumbing", "forwardTo": "+14155559999", "timezone": "Europe/Paris"},
        headers=AUTH,
    )
    assert response.status_code == 201
    created = response.get_json()
    assert set(created) == {
        "id",
        "name",
        "forwardTo",
        "timezone",
        "recordingEnabled",
        "recordingDisclaimer",
        "retentionDays",
        "deleteFromTwilio",
        "monthlyRevenue",
        "valuePerConversion",
        "leadThresholds",
        "dailyOutboundCap",
        "createdAt",
        "updatedAt",
    }
    assert created["name"] == "Acme Plumbing"
    assert created["forwardTo"] == "+14155559999"
    assert created["timezone"] == "Europe/Paris"
    assert uuid.UUID(created["id"])
    assert created["createdAt"].endswith("Z")
    assert response.headers["Location"] == f"/api/clients/{created['id']}"

    fetched = http.get(f"/api/clients/{created['id']}", headers=AUTH)
    assert fetched.status_code == 200
    assert fetched.get_json() == created
    listed = http.get("/api/clients", headers=AUTH).get_json()
    assert listed == {"clients": [created]}


def test_client_timezone_defaults_to_utc(http: FlaskClient) -> None:
    created = create_client(http, name="No Zone")
    assert created["timezone"] == "UTC"
    assert created["forwardTo"] is None


@pytest.mark.parametrize(
    "client_id", ["5f0c6a3e-2b1d-4c8e-9a7f-3d2e1b0c9a8f", "not-a-uuid", "1' OR '1'='1"]
)
def test_unknown_or_malformed_client_id_is_a_json_404(http: FlaskClient, client_id: str) -> None:
    for path in (f"/api/clients/{client_id}", f"/api/clients/{client_id}/numbers"):
        response = http.get(path, headers=AUTH)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "client_not_found"
    response = http.post(
        f"/api/clients/{client_id}/numbers", json={"phoneNumber": "+14155550100"}, headers=AUTH
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 201},
        {"name": "Acme", "forwardTo": "4155559999"},
        {"name": "Acme", "timezone": "Nowhere/Land"},
        {"forwardTo": "+14155559999"},
    ],
)
def test_invalid_client_is_a_400_with_a_reason_and_writes_nothing(
    http: FlaskClient, body: dict[str, object]
) -> None:
    response = http.post("/api/clients", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]
    assert http.get("/api/clients", headers=AUTH).get_json() == {"clients": []}


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", b'"Acme"', b""],
)
def test_body_that_is_not_a_json_object_is_a_400(http: FlaskClient, payload: bytes) -> None:
    response = http.post(
        "/api/clients", data=payload, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_body"


def test_assigned_number_is_returned_and_listed_for_its_client(http: FlaskClient) -> None:
    client = create_client(http, forwardTo="+14155559999")
    response = http.post(
        f"/api/clients/{client['id']}/numbers",
        json={
            "phoneNumber": "+14155550100",
            "recordingDisclaimer": "This call is recorded.",
            "campaign": "spring-mailer",
        },
        headers=AUTH,
    )
    assert response.status_code == 201
    number = response.get_json()
    assert number == {
        "phoneNumber": "+14155550100",
        "clientId": client["id"],
        "forwardTo": "+14155559999",
        "record": True,
        "recordingDisclaimer": "This call is recorded.",
        "campaign": "spring-mailer",
        "assignedAt": number["assignedAt"],
    }
    listed = http.get(f"/api/clients/{client['id']}/numbers", headers=AUTH).get_json()
    assert listed == {"numbers": [number]}


def test_number_forward_to_overrides_the_client_default(http: FlaskClient) -> None:
    client = create_client(http, forwardTo="+14155559999")
    number = assign_number(
        http, client["id"], phoneNumber="+14155550100", forwardTo="+14155558888", record=False
    )
    assert number["forwardTo"] == "+14155558888"
    assert number["record"] is False


def test_second_assignment_of_a_number_to_any_client_is_a_409(http: FlaskClient) -> None:
    first = create_client(http, name="First", forwardTo="+14155559999")
    second = create_client(http, name="Second", forwardTo="+14155558888")
    assign_number(http, first["id"], phoneNumber="+14155550100")
    for owner in (first, second):
        response = http.post(
            f"/api/clients/{owner['id']}/numbers",
            json={"phoneNumber": "+14155550100"},
            headers=AUTH,
        )
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "number_taken"
    assert http.get(f"/api/clients/{second['id']}/numbers", headers=AUTH).get_json() == {
        "numbers": []
    }


@pytest.mark.parametrize(
    "body",
    [
        {"phoneNumber": "4155550100"},
        {"phoneNumber": "+1 (415) 555-0100"},
        {"phoneNumber": "+14155550100", "forwardTo": "0044 20 7946 0958"},
        {"phoneNumber": "+14155550100", "record": "yes"},
        {"phoneNumber": "+14155550100", "campaign": ["a"]},
        {"phoneNumber": "+14155550100", "areaCode": "415"},
        {"areaCode": "41"},
        {"areaCode": "015"},
        {"phoneNumber": "+14155550100", "color": "blue"},
    ],
)
def test_bad_number_is_a_400_with_a_reason_and_writes_no_row(
    router_app: Flask, http: FlaskClient, body: dict[str, object]
) -> None:
    client = create_client(http, forwardTo="+14155559999")
    response = http.post(f"/api/clients/{client['id']}/numbers", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]
    assert runtime_of(router_app).store.all_assignments() == []


def test_number_without_forward_to_for_a_client_without_one_is_a_400(
    router_app: Flask, http: FlaskClient
) -> None:
    client = create_client(http)
    response = http.post(
        f"/api/clients/{client['id']}/numbers", json={"phoneNumber": "+14155550100"}, headers=AUTH
    )
    assert response.status_code == 400
    assert "forwardTo" in response.get_json()["error"]["message"]
    assert runtime_of(router_app).store.all_assignments() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/clients"),
        ("GET", "/api/clients"),
        ("GET", "/api/clients/{id}"),
        ("POST", "/api/clients/{id}/numbers"),
        ("GET", "/api/clients/{id}/numbers"),
    ],
)
def test_management_api_needs_the_admin_token(http: FlaskClient, method: str, path: str) -> None:
    client = create_client(http, forwardTo="+14155559999")
    url = path.format(id=client["id"])
    body = {"name": "Intruder", "phoneNumber": "+14155550100"}
    cases = [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token"}, 403),
        ({"Authorization": f"Basic {ADMIN_TOKEN}"}, 401),
    ]
    for headers, status in cases:
        response = http.open(url, method=method, json=body, headers=headers)
        assert response.status_code == status
        assert response.get_json()["error"]["code"] in ("unauthorized", "forbidden")
    clients = http.get("/api/clients", headers=AUTH).get_json()["clients"]
    assert [c["name"] for c in clients] == ["Acme Plumbing"]
    assert http.get(f"/api/clients/{client['id']}/numbers", headers=AUTH).get_json() == {
        "numbers": []
    }


def test_database_outage_is_a_503_not_a_500(router_app: Flask, http: FlaskClient) -> None:
    runtime_of(router_app).store.close()
    response = http.get("/api/clients", headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
