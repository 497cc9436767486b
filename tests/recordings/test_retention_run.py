"""A retention run deletes exactly the recordings past their client's retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.recordings.app import Runtime
from services.recordings.deletion import run_housekeeping
from services.recordings.metadata import ClientSettings
from switchboard import events
from tests.kafka_read import read_topic
from tests.recordings import recording_events as ev
from tests.recordings.conftest import Sim
from tests.recordings.seeding import stored_recording


def test_a_retention_run_deletes_exactly_the_expired_recordings(
    runtime: Runtime,
    sim: Sim,
    kafka_bootstrap: str,
) -> None:
    now = datetime.now(UTC)
    month, forever, unknown = ev.new_client_id(), ev.new_client_id(), ev.new_client_id()
    db = runtime.store
    db.save_client_settings(ev_settings(month, 30), "e1", now)
    db.save_client_settings(ev_settings(forever, None), "e2", now)

    expired = stored_recording(runtime, sim, month, started=now - timedelta(days=31))
    young = stored_recording(runtime, sim, month, started=now - timedelta(days=29))
    ancient_kept = stored_recording(runtime, sim, forever, started=now - timedelta(days=900))
    no_settings = stored_recording(runtime, sim, unknown, started=now - timedelta(days=900))

    result = run_housekeeping(runtime.config, db, runtime.storage, runtime.deleter, now=now)

    assert result.expired_deleted == [expired.recording_sid]
    root = Path(runtime.config.storage_dir)
    tombstone = db.recording(expired.recording_sid)
    assert tombstone is not None and tombstone.status == "deleted"
    assert tombstone.deletion_reason == "retention" and tombstone.deleted_by == "system:retention"
    assert not (root / str(expired.storage_key)).exists()
    assert not sim.has_recording(expired.recording_sid)
    for kept in (young, ancient_kept, no_settings):
        assert db.recording(kept.recording_sid).stored  # type: ignore[union-attr]
        assert (root / str(kept.storage_key)).is_file()

    again = run_housekeeping(runtime.config, db, runtime.storage, runtime.deleter, now=now)
    assert again.expired_deleted == []

    deleted = [
        m["value"]
        for m in read_topic(kafka_bootstrap, runtime.config.topics.call_events)
        if m["value"]["type"] == "recording.deleted"
    ]
    assert [d["data"]["recordingSid"] for d in deleted] == [expired.recording_sid]
    events.validate(deleted[0])


def test_newer_client_settings_win_over_older_ones_arriving_late(runtime: Runtime) -> None:
    client_id = ev.new_client_id()
    now = datetime.now(UTC)
    assert runtime.store.save_client_settings(ev_settings(client_id, 7), "new", now)
    assert not runtime.store.save_client_settings(
        ev_settings(client_id, 365), "old", now - timedelta(minutes=5)
    )
    settings = runtime.store.client_settings(client_id)
    assert settings is not None and settings.retention_days == 7


def ev_settings(client_id: str, days: int | None) -> ClientSettings:
    return ClientSettings(client_id, True, days, False)
