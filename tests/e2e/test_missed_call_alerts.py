"""Missed-call alerts through the whole system: a simulated call to the edge, an email in the
mail catcher, an SMS at the simulator, with a voicemail's signed link that plays.

Its own stack (the services reporting needs, behind the edge): the client's
notification settings are set through router's API, the call is played by
the Twilio simulator, and the mail arrives in the stack's mail catcher.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from devstack.stack import Stack
from tests.e2e.conftest import ACCOUNT_SID, ADMIN, AUTH_TOKEN, System, number
from tests.support import wait_until

TARGET = "+14155550101"


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with Stack(
        tmp_path_factory.mktemp("alerts"),
        kafka_bootstrap=kafka_bootstrap,
        postgres_url=postgres_url,
        services=("twilio_sim", "router", "recordings", "ingress", "reporting"),
        env={
            "ADMIN_API_TOKEN": ADMIN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        },
    ) as made:
        yield made


@pytest.fixture(scope="module")
def system(stack: Stack) -> System:
    assert stack.edge is not None
    return System(stack.edge, stack.services, stack.topics, stack.env)


def mail_to(stack: Stack, address: str) -> list[EmailMessage]:
    assert stack.mail is not None
    found = []
    for kept in stack.mail.messages():
        message = message_from_bytes(kept.as_bytes(), policy=policy.default)
        if message["To"] == address:
            found.append(message)
    return found  # type: ignore[return-value]


def test_a_voicemail_alert_arrives_by_email_and_sms_with_a_link_that_plays(
    stack: Stack, system: System
) -> None:
    created = system.admin(
        "POST", "/api/clients", json={"name": "Smile Dental", "forwardTo": TARGET}
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["id"]
    tracked = number()
    owner = f"owner-{uuid.uuid4().hex[:8]}@smile.example"
    texted = f"+1415555{uuid.uuid4().int % 10000:04d}"  # a number SMS may go to
    assigned = system.admin(
        "POST",
        f"/api/clients/{client_id}/numbers",
        json={"phoneNumber": tracked, "record": False},
    )
    assert assigned.status_code == 201, assigned.text
    flow = {
        "ring": {"strategy": "simultaneous", "targets": [{"number": TARGET}]},
        "voicemail": {"greeting": "Please leave a message", "maxLengthSec": 60},
    }
    assert system.admin("PUT", f"/api/numbers/{tracked}/flow", json=flow).status_code == 200
    settings = {"missedCall": {"email": [owner], "sms": [texted]}}
    put = system.admin("PUT", f"/api/clients/{client_id}/notifications", json=settings)
    assert put.status_code == 200, put.text
    system.own_at_simulator(tracked)
    sim = system.simulator

    played = requests.post(
        f"{sim}/sim/calls",
        json={
            "from": "+12125550188",
            "to": tracked,
            "answerers": {TARGET: "no-answer"},
            "voicemailSeconds": 12,
        },
        timeout=10,
    )
    assert played.status_code == 202, played.text
    call_sid = played.json()["callSid"]

    [mail] = wait_until(lambda: mail_to(stack, owner), timeout=90, message="the alert email")
    body = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Smile Dental" in body and "+12125550188" in body and tracked in body
    assert "voicemail left" in body and "Voicemail: 12 s" in body
    assert call_sid in body
    link = next(
        line.removeprefix("Listen: ") for line in body.splitlines() if line.startswith("Listen: ")
    )
    assert link.startswith(system.url + "/api/recordings/media/")
    media = requests.get(link, timeout=10)
    assert media.status_code == 200 and len(media.content) > 0

    def texts() -> list[dict[str, Any]]:
        reply = requests.get(f"{sim}/sim/messages", params={"to": texted}, timeout=10)
        found: list[dict[str, Any]] = reply.json()["messages"]
        return found

    [text] = wait_until(texts, timeout=30, message="the alert SMS")
    assert text["from"] == tracked and link in text["body"]
