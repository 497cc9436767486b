"""The events the recordings worker consumes, built by their producers' own builders.

Ingress's `to_event` for Twilio's callbacks, router's routing decision and
client facts; a test only picks the inputs (tests/kernel/
test_no_hand_built_events.py keeps it so).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from services.ingress.webhooks import WEBHOOKS, to_event
from services.router import facts
from services.router.directory import Client, ClientSettings, NumberAssignment
from services.router.routing import decide, routed_event
from switchboard.events import Event
from switchboard.kafka import EventProducer, Topics

TWILIO_NUMBER = "+14155550100"
CLIENT_PHONE = "+14155559999"


def webhook(kind: str, params: dict[str, str]) -> Event:
    """What ingress publishes for Twilio's `kind` callback (deterministic id)."""
    return to_event(WEBHOOKS[kind], params, f"https://example.test/api/twilio/{kind}", None)


def recording_status(params: dict[str, str]) -> Event:
    return webhook("recording-status", params)


def served_by(params: dict[str, str], base_url: str) -> dict[str, str]:
    """The same callback from a Twilio at `base_url`: its RecordingUrl names that base."""
    path = urlsplit(params["RecordingUrl"]).path
    return {**params, "RecordingUrl": base_url.rstrip("/") + path}


def routed(call_sid: str, client_id: str | None, recording: bool = True) -> Event:
    """Router's decision: forwarded to the client's phone, or unassigned without a client."""
    owner = None
    if client_id is not None:
        moment = datetime.now(UTC)
        owner = NumberAssignment(
            TWILIO_NUMBER, client_id, CLIENT_PHONE, recording, None, None, moment
        )
    return routed_event(decide(TWILIO_NUMBER, owner), call_sid, None)


def received(call_sid: str, caller: str, to: str = TWILIO_NUMBER) -> Event:
    params = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": caller,
        "To": to,
        "Direction": "inbound",
    }
    return webhook("voice", params)


def settings_changed(
    client_id: str,
    retention_days: int | None = None,
    delete_from_twilio: bool = False,
    recording_enabled: bool = True,
) -> Event:
    """What router publishes on the client-events topic when a client's settings change."""
    settings = ClientSettings(
        name=f"Client {client_id}",
        recording_enabled=recording_enabled,
        retention_days=retention_days,
        delete_from_twilio=delete_from_twilio,
    )
    moment = datetime.now(UTC)
    return facts.client_settings_changed(Client(client_id, settings, moment, moment))


def new_client_id() -> str:
    return str(uuid.uuid4())


class Publisher:
    """Puts events on a test's topics, acknowledged before returning."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.producer = EventProducer(bootstrap)
        self.topics = topics

    def call_event(self, event: Event) -> None:
        self.producer.publish(self.topics.call_events, event, event.callSid, timeout=10)

    def client_event(self, event: Event) -> None:
        self.producer.publish(self.topics.client_events, event, event.clientId, timeout=10)

    def close(self) -> None:
        self.producer.close()
