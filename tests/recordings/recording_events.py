"""The events the recordings worker consumes, built the way their producers build them."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from switchboard import events
from switchboard.events import Event
from switchboard.kafka import EventProducer, Topics


def recording_status(params: dict[str, str]) -> Event:
    """What ingress publishes for a recording status callback (deterministic id)."""
    return Event(
        type="recording.status-reported",
        source="ingress",
        id=events.delivery_id("recording-status", params),
        callSid=params["CallSid"],
        data={"params": params},
    )


def served_by(params: dict[str, str], base_url: str) -> dict[str, str]:
    """The same callback from a Twilio at `base_url`: its RecordingUrl names that base."""
    path = urlsplit(params["RecordingUrl"]).path
    return {**params, "RecordingUrl": base_url.rstrip("/") + path}


def routed(call_sid: str, client_id: str | None, recording: bool = True) -> Event:
    return Event(
        type="call.routed",
        source="router",
        callSid=call_sid,
        clientId=client_id,
        data={
            "phoneNumber": "+14155550100",
            "disposition": "forwarded" if client_id else "unassigned",
            "clientId": client_id,
            "forwardTo": "+14155559999" if client_id else None,
            "recording": recording,
            "campaign": None,
        },
    )


def received(call_sid: str, caller: str, to: str = "+14155550100") -> Event:
    return Event(
        type="call.received",
        source="ingress",
        callSid=call_sid,
        data={
            "params": {
                "CallSid": call_sid,
                "AccountSid": "AC" + "0" * 32,
                "From": caller,
                "To": to,
                "Direction": "inbound",
            }
        },
    )


def settings_changed(
    client_id: str,
    retention_days: int | None = None,
    delete_from_twilio: bool = False,
    recording_enabled: bool = True,
    **extra: Any,
) -> Event:
    """What router will publish on the client-events topic when a client's settings change."""
    return Event(
        type="client.settings-changed",
        source="router",
        clientId=client_id,
        data={
            "clientId": client_id,
            "recordingEnabled": recording_enabled,
            "retentionDays": retention_days,
            "deleteFromTwilio": delete_from_twilio,
            **extra,
        },
    )


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
        self.producer.flush(5)
