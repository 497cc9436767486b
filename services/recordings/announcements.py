"""The events this service produces: recording.stored, recording.failed, recording.deleted.

They go to the call-events topic keyed by the parent CallSid, so they sit in
order with the call's other events (analytics folds them into the call fact).
Event ids are derived from the RecordingSid and what happened, so producing
the same fact again after a crash or a re-delivery makes a duplicate by id,
which every consumer already ignores. The builders are pure; `Announcer`
publishes and waits for the broker's acknowledgement.
"""

from __future__ import annotations

from switchboard import events
from switchboard.events import Event
from switchboard.kafka import EventProducer, Topics

SOURCE = "recordings"


def stored_event(
    recording_sid: str,
    call_sid: str,
    client_id: str | None,
    duration_sec: int | None,
    channels: int,
    size: int,
    sha256: str,
    fmt: str,
    recorded_at: str | None,
    twilio_copy_deleted: bool,
) -> Event:
    return Event(
        type="recording.stored",
        source=SOURCE,
        id=events.delivery_id("recording.stored", {"RecordingSid": recording_sid}),
        callSid=call_sid,
        clientId=client_id,
        data={
            "recordingSid": recording_sid,
            "callSid": call_sid,
            "clientId": client_id,
            "durationSec": duration_sec,
            "channels": channels,
            "bytes": size,
            "sha256": sha256,
            "format": fmt,
            "recordedAt": recorded_at,
            "twilioCopyDeleted": twilio_copy_deleted,
        },
    )


def failed_event(
    recording_sid: str,
    call_sid: str,
    client_id: str | None,
    status: str,
    recording_status: str,
    reason: str,
    error_code: str | None,
) -> Event:
    return Event(
        type="recording.failed",
        source=SOURCE,
        id=events.delivery_id(
            "recording.failed", {"RecordingSid": recording_sid, "Reason": reason}
        ),
        callSid=call_sid,
        clientId=client_id,
        data={
            "recordingSid": recording_sid,
            "callSid": call_sid,
            "clientId": client_id,
            "status": status,
            "recordingStatus": recording_status,
            "reason": reason,
            "errorCode": error_code,
        },
    )


def deleted_event(
    recording_sid: str,
    call_sid: str,
    client_id: str | None,
    reason: str,
    deleted_by: str,
    twilio_copy_deleted: bool,
) -> Event:
    return Event(
        type="recording.deleted",
        source=SOURCE,
        id=events.delivery_id("recording.deleted", {"RecordingSid": recording_sid}),
        callSid=call_sid,
        clientId=client_id,
        data={
            "recordingSid": recording_sid,
            "callSid": call_sid,
            "clientId": client_id,
            "reason": reason,
            "deletedBy": deleted_by,
            "twilioCopyDeleted": twilio_copy_deleted,
        },
    )


class Announcer:
    """Publishes this service's events on the call-events topic."""

    def __init__(self, producer: EventProducer, topics: Topics, timeout: float) -> None:
        self.producer = producer
        self.topics = topics
        self.timeout = timeout

    def announce(self, event: Event) -> None:
        self.producer.publish(self.topics.call_events, event, event.callSid, self.timeout)
