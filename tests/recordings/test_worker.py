"""The worker on real Kafka, PostgreSQL and the Twilio simulator: fetch, verify, store, once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from services.recordings.app import Runtime, build_runtime
from services.recordings.config import Config
from services.recordings.consumer import RecordingsWorker
from services.recordings.metadata import Recording
from switchboard import events
from switchboard.kafka import EventProducer
from tests.kafka_read import read_topic, wait_committed_past
from tests.recordings import recording_events as ev
from tests.recordings.conftest import Sim
from tests.recordings.recording_events import Publisher
from tests.recordings.stand_ins import FlakyMedia
from tests.support import wait_until

StartWorker = Callable[[], RecordingsWorker]


def wait_for_status(runtime: Runtime, sid: str, status: str, timeout: float = 30) -> Recording:
    def reached() -> Recording | None:
        recording = runtime.store.recording(sid)
        return recording if recording is not None and recording.status == status else None

    return wait_until(reached, timeout=timeout, message=f"{sid} {status}")


def worker_caught_up(runtime: Runtime, kafka_bootstrap: str) -> None:
    """Wait until the worker has committed past every call event published so far."""
    config = runtime.config
    wait_committed_past(kafka_bootstrap, config.group_id, config.topics.call_events)


def own_events(
    config: Config, kafka_bootstrap: str, type_: str, expect: int | None = None
) -> list[dict[str, object]]:
    found = read_topic(kafka_bootstrap, config.topics.call_events, expect=expect)
    bodies = [m["value"] for m in found if m["value"].get("type") == type_]
    for body in bodies:
        events.validate(body)
    return bodies


def renamed(params: dict[str, str], sid: str) -> dict[str, str]:
    """The same callback for another RecordingSid (its URL too)."""
    url = params["RecordingUrl"].replace(params["RecordingSid"], sid)
    return {**params, "RecordingSid": sid, "RecordingUrl": url}


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts)


def test_completed_recording_is_stored_once_with_the_checksum_of_twilios_media(
    sim: Sim,
    runtime: Runtime,
    start_worker: StartWorker,
    publish: Publisher,
    kafka_bootstrap: str,
) -> None:
    params = sim.recorded_call(channels=2)
    sid, call_sid = params["RecordingSid"], params["CallSid"]
    client_id = ev.new_client_id()
    publish.client_event(ev.settings_changed(client_id, delete_from_twilio=False))
    publish.call_event(ev.received(call_sid, "+14155550123"))
    publish.call_event(ev.routed(call_sid, client_id))
    status_event = ev.recording_status(params)
    publish.call_event(status_event)
    publish.call_event(status_event)  # Twilio retried the callback: a duplicate
    start_worker()

    recording = wait_for_status(runtime, sid, "stored")
    twilio_bytes = sim.media(sid)
    assert recording.sha256 == hashlib.sha256(twilio_bytes).hexdigest()
    assert recording.bytes == len(twilio_bytes)
    assert recording.client_id == client_id
    assert recording.call_sid == call_sid
    assert recording.channels == 2
    assert recording.format == "wav"
    assert recording.duration_sec == int(params["RecordingDuration"])
    assert recording.twilio_deleted_at is None
    assert sim.has_recording(sid), "the client did not ask to delete Twilio's copy"
    root = Path(runtime.config.storage_dir)
    assert stored_files(root) == [root / str(recording.storage_key)]
    # Sealed on disk (see test_encryption), Twilio's bytes when read back.
    assert (root / str(recording.storage_key)).read_bytes() != twilio_bytes
    assert b"".join(runtime.storage.read(str(recording.storage_key))) == twilio_bytes

    publish.call_event(status_event)  # re-delivered once more, after storing
    worker_caught_up(runtime, kafka_bootstrap)
    assert len(runtime.store.recordings_of_call(call_sid)) == 1
    assert len(stored_files(root)) == 1
    stored = own_events(runtime.config, kafka_bootstrap, "recording.stored")
    assert {body["id"] for body in stored} == {stored[0]["id"]}
    data = stored[0]["data"]
    assert isinstance(data, dict)
    assert data["sha256"] == recording.sha256 and data["clientId"] == client_id
    assert data["twilioCopyDeleted"] is False


def test_twilio_copy_is_deleted_after_the_verified_store_when_the_client_says_so(
    sim: Sim,
    runtime: Runtime,
    start_worker: StartWorker,
    publish: Publisher,
    kafka_bootstrap: str,
) -> None:
    params = sim.recorded_call(channels=1)
    sid, call_sid = params["RecordingSid"], params["CallSid"]
    expected = hashlib.sha256(sim.media(sid)).hexdigest()
    client_id = ev.new_client_id()
    start_worker()
    # The settings come on another topic, with no order against the call's
    # events: the worker must know them before the recording arrives (a
    # copy whose settings come later is the test of that order, further down).
    publish.client_event(ev.settings_changed(client_id, delete_from_twilio=True))
    wait_until(lambda: runtime.store.client_settings(client_id), message="client settings stored")
    publish.call_event(ev.routed(call_sid, client_id))
    publish.call_event(ev.recording_status(params))

    recording = wait_for_status(runtime, sid, "stored")
    wait_until(
        lambda: runtime.store.recording(sid).twilio_deleted_at,  # type: ignore[union-attr]
        message="Twilio copy deleted",
    )
    assert recording.sha256 == expected
    assert recording.channels == 1
    assert not sim.has_recording(sid)
    [stored] = own_events(runtime.config, kafka_bootstrap, "recording.stored")
    assert stored["data"]["twilioCopyDeleted"] is True  # type: ignore[index]


def test_absent_and_failed_recordings_are_recorded_and_never_downloaded(
    sim: Sim,
    runtime: Runtime,
    start_worker: StartWorker,
    publish: Publisher,
    kafka_bootstrap: str,
) -> None:
    params = sim.recorded_call(channels=2)
    absent = {**renamed(params, "RE" + "a" * 32), "RecordingStatus": "absent", "ErrorCode": "13617"}
    failed = {**renamed(params, "RE" + "f" * 32), "RecordingStatus": "failed"}
    in_progress = {**params, "RecordingStatus": "in-progress"}
    for fields in (absent, failed, in_progress):
        publish.call_event(ev.recording_status(fields))
    start_worker()

    gone = wait_for_status(runtime, absent["RecordingSid"], "absent")
    assert gone.failure_reason and "13617" in gone.failure_reason
    wait_for_status(runtime, failed["RecordingSid"], "failed")
    worker_caught_up(runtime, kafka_bootstrap)
    assert runtime.store.recording(params["RecordingSid"]) is None, "in-progress is not stored"
    assert not list(Path(runtime.config.storage_dir).rglob("*.wav"))
    failures = own_events(runtime.config, kafka_bootstrap, "recording.failed")
    assert sorted(b["data"]["status"] for b in failures) == ["absent", "failed"]  # type: ignore[index]
    assert read_topic(kafka_bootstrap, runtime.config.topics.dead_letters, settle=0.5) == []


def test_downloads_are_retried_on_5xx_then_stored(
    sim: Sim,
    config: Config,
    publish: Publisher,
    kafka_bootstrap: str,
) -> None:
    params = sim.recorded_call(channels=2)
    sid = params["RecordingSid"]
    body = sim.media(sid)
    with FlakyMedia({sid: body}, {sid: [503, 500]}) as flaky:
        runtime = build_runtime(replace(config, twilio_api_base_url=flaky.url))
        worker = RecordingsWorker(runtime.config, runtime.store, runtime.archiver, runtime.producer)
        try:
            publish.call_event(ev.recording_status(ev.served_by(params, flaky.url)))
            worker.start()
            recording = wait_for_status(runtime, sid, "stored")
        finally:
            worker.stop()
            runtime.close()
    assert flaky.gets[sid] == 3
    assert recording.sha256 == hashlib.sha256(body).hexdigest()


def test_a_download_that_keeps_failing_is_dead_lettered_with_the_reason(
    sim: Sim,
    config: Config,
    publish: Publisher,
    kafka_bootstrap: str,
) -> None:
    params = sim.recorded_call(channels=2)
    broken = renamed(params, "RE" + "5" * 32)
    missing = renamed(params, "RE" + "4" * 32)
    after = sim.recorded_call(channels=2)
    with FlakyMedia({}, {broken["RecordingSid"]: [503] * 10}) as flaky:
        runtime = build_runtime(replace(config, twilio_api_base_url=flaky.url))
        worker = RecordingsWorker(runtime.config, runtime.store, runtime.archiver, runtime.producer)
        try:
            for fields in (broken, missing):
                publish.call_event(ev.recording_status(ev.served_by(fields, flaky.url)))
            worker.start()
            failed = wait_for_status(runtime, broken["RecordingSid"], "failed")
            wait_for_status(runtime, missing["RecordingSid"], "failed")
        finally:
            worker.stop()
            runtime.close()
    assert flaky.gets[broken["RecordingSid"]] == config.download_attempts
    assert flaky.gets[missing["RecordingSid"]] == 1, "a 404 is not retried"
    assert failed.failure_reason and "503" in failed.failure_reason
    letters = read_topic(kafka_bootstrap, config.topics.dead_letters, expect=2)
    reasons = {
        json.loads(m["value"]["value"])["data"]["params"]["RecordingSid"]: m["value"]["reason"]
        for m in letters
    }
    assert "503" in reasons[broken["RecordingSid"]]
    assert "404" in reasons[missing["RecordingSid"]]
    assert all(m["value"]["consumer"] == "recordings" for m in letters)
    failures = own_events(config, kafka_bootstrap, "recording.failed")
    assert {b["data"]["recordingSid"] for b in failures} == {  # type: ignore[index]
        broken["RecordingSid"],
        missing["RecordingSid"],
    }

    # The partition was not blocked: a later recording on the same topic is stored.
    runtime = build_runtime(config)
    worker = RecordingsWorker(runtime.config, runtime.store, runtime.archiver, runtime.producer)
    try:
        publish.call_event(ev.recording_status(after))
        worker.start()
        wait_for_status(runtime, after["RecordingSid"], "stored")
    finally:
        worker.stop()
        runtime.close()


def test_a_recording_stored_before_its_call_routed_event_learns_its_client_later(
    sim: Sim,
    runtime: Runtime,
    start_worker: StartWorker,
    publish: Publisher,
) -> None:
    params = sim.recorded_call(channels=2)
    sid, call_sid = params["RecordingSid"], params["CallSid"]
    publish.call_event(ev.recording_status(params))
    start_worker()
    assert wait_for_status(runtime, sid, "stored").client_id is None
    client_id = ev.new_client_id()
    publish.call_event(ev.routed(call_sid, client_id))
    wait_until(
        lambda: runtime.store.recording(sid).client_id == client_id,  # type: ignore[union-attr]
        message="client learned",
    )


def test_an_event_that_is_not_valid_is_dead_lettered_and_skipped(
    sim: Sim,
    runtime: Runtime,
    start_worker: StartWorker,
    publish: Publisher,
    kafka_bootstrap: str,
) -> None:
    raw = EventProducer(kafka_bootstrap)
    raw.publish_raw(runtime.config.topics.call_events, b"{not json", "CAbad", timeout=10)
    raw.close()
    params = sim.recorded_call(channels=2)
    publish.call_event(ev.recording_status(params))
    start_worker()
    wait_for_status(runtime, params["RecordingSid"], "stored")
    [letter] = read_topic(kafka_bootstrap, runtime.config.topics.dead_letters, expect=1)
    assert "not JSON" in letter["value"]["reason"]


def test_settings_that_arrive_after_the_recording_still_get_the_twilio_copy_deleted(
    sim: Sim,
    runtime: Runtime,
    publish: Publisher,
) -> None:
    """Client settings travel on another topic, so nothing orders them before a call's
    recording; the housekeeping pass they wake catches up."""
    from services.recordings.app import create_app

    params = sim.recorded_call(channels=2)
    sid, call_sid = params["RecordingSid"], params["CallSid"]
    client_id = ev.new_client_id()
    publish.call_event(ev.routed(call_sid, client_id))
    publish.call_event(ev.recording_status(params))
    create_app(runtime.config, run_worker=True, run_housekeeping=True, runtime=runtime)
    wait_for_status(runtime, sid, "stored")
    assert sim.has_recording(sid)

    publish.client_event(ev.settings_changed(client_id, delete_from_twilio=True))
    wait_until(
        lambda: runtime.store.recording(sid).twilio_deleted_at,  # type: ignore[union-attr]
        timeout=20,
        message="Twilio copy deleted",
    )
    assert not sim.has_recording(sid)
