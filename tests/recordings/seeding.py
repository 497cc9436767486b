"""Putting stored recordings in place for API and retention tests, through the real archive step.

Each recording is played on the simulator, its call routed to a client (and
its caller received), and its recording status callback archived by the
service's own Archiver: a real download from the simulator into this test's
storage and database, without waiting for a consumer group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from services.recordings.app import Runtime
from services.recordings.archiving import RecordingReport
from services.recordings.metadata import Recording
from tests.recordings import recording_events as ev
from tests.recordings.conftest import Sim


def stored_recording(
    runtime: Runtime,
    sim: Sim,
    client_id: str | None,
    caller: str = "+14155550123",
    started: datetime | None = None,
    channels: int = 2,
    source: str | None = None,
) -> Recording:
    """`source` replaces Twilio's RecordingSource (RecordVerb: the caller's voicemail)."""
    params = sim.recorded_call(channels=channels)
    if source is not None:
        params["RecordingSource"] = source
    if started is not None:
        params["RecordingStartTime"] = format_datetime(started.astimezone(UTC), usegmt=True)
    call_sid = params["CallSid"]
    now = datetime.now(UTC)
    runtime.store.record_call_received(call_sid, caller, now)
    if client_id is not None:
        runtime.store.record_call_routed(call_sid, client_id, now)
    recording = runtime.archiver.archive(RecordingReport.from_event(ev.recording_status(params)))
    assert recording is not None and recording.stored, recording
    return recording
