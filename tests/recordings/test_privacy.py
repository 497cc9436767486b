"""Router's asks of a caller across clients: their recordings with fresh links, then erasure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from flask.testing import FlaskClient

from services.recordings.app import Runtime, create_app
from services.recordings.deletion import run_housekeeping
from services.recordings.metadata import ClientSettings
from services.router.privacy import caller_erased, erased_key
from switchboard.privacy import caller_token
from tests.recordings import recording_events as ev
from tests.recordings.conftest import ADMIN, Sim
from tests.recordings.recording_events import Publisher
from tests.recordings.seeding import stored_recording
from tests.support import wait_until

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
CALLER = "+12125550147"
TOKEN = caller_token("test-secret", CALLER)


@pytest.fixture
def http(runtime: Runtime) -> Iterator[FlaskClient]:
    app = create_app(runtime.config, run_worker=False, run_housekeeping=False, runtime=runtime)
    yield app.test_client()


def test_a_callers_recordings_of_every_client_are_exported_with_working_links_then_erased(
    runtime: Runtime, sim: Sim, http: FlaskClient
) -> None:
    first, second = ev.new_client_id(), ev.new_client_id()
    mine = [
        stored_recording(runtime, sim, first, CALLER),
        stored_recording(runtime, sim, second, CALLER),
    ]
    other = stored_recording(runtime, sim, first, "+12125550999")
    path = f"/internal/privacy/callers/{CALLER}"

    exported = http.get(path, headers=ADMIN_HEADERS, query_string={"token": TOKEN})
    assert exported.status_code == 200, exported.get_json()
    listed = exported.get_json()["recordings"]
    assert sorted(r["recordingSid"] for r in listed) == sorted(r.recording_sid for r in mine)
    for item in listed:
        link = urlsplit(item["downloadUrl"])
        media = http.get(f"{link.path}?{link.query}")
        assert media.status_code == 200 and len(media.data) == item["bytes"]

    erased = http.delete(path, headers=ADMIN_HEADERS, query_string={"token": TOKEN})
    assert erased.status_code == 200, erased.get_json()
    assert sorted(erased.get_json()["deleted"]) == sorted(r.recording_sid for r in mine)
    assert erased.get_json()["calls"] == 2
    for recording in mine:
        assert not (Path(runtime.config.storage_dir) / str(recording.storage_key)).exists()
        tombstone = runtime.store.recording(recording.recording_sid)
        assert tombstone is not None and tombstone.status == "deleted"
    assert runtime.store.recording(other.recording_sid).stored  # type: ignore[union-attr]
    assert runtime.store.caller_recordings_everywhere(CALLER) == []
    audit = runtime.store.audit_log(10, f"caller:{TOKEN}")
    assert [e.action for e in audit][:2] == ["caller.erased", "caller.exported"]
    assert CALLER not in str([e.detail for e in audit])


def test_a_callers_data_across_clients_is_for_the_admin_and_needs_a_number(
    runtime: Runtime, http: FlaskClient
) -> None:
    path = f"/internal/privacy/callers/{CALLER}"
    assert http.get(path).status_code == 401
    assert http.delete(path, headers={"Authorization": "Bearer sk_nobody"}).status_code == 403
    bad = http.delete("/internal/privacy/callers/2125550147", headers=ADMIN_HEADERS)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_number"


def test_a_deleted_clients_recordings_are_purged_once_its_grace_period_has_passed(
    runtime: Runtime, sim: Sim
) -> None:
    gone, waiting, kept = ev.new_client_id(), ev.new_client_id(), ev.new_client_id()
    recordings = {c: stored_recording(runtime, sim, c) for c in (gone, waiting, kept)}
    now = datetime.now(UTC)
    due = {gone: now - timedelta(seconds=1), waiting: now + timedelta(days=1)}
    for client, purge_after in due.items():
        settings = ClientSettings(client, True, None, False, purge_after=purge_after)
        assert runtime.store.save_client_settings(settings, f"event-{client}", now)

    result = run_housekeeping(
        runtime.config, runtime.store, runtime.storage, runtime.deleter, now=now
    )

    assert result.clients_purged == [gone]
    purged = runtime.store.recording(recordings[gone].recording_sid)
    assert purged is not None and purged.status == "deleted" and purged.deletion_reason == "purge"
    assert not (Path(runtime.config.storage_dir) / str(recordings[gone].storage_key)).exists()
    assert runtime.store.call_client(recordings[gone].call_sid) is None
    for client in (waiting, kept):
        still = runtime.store.recording(recordings[client].recording_sid)
        assert still is not None and still.stored
    [entry] = runtime.store.audit_log(10, f"client:{gone}")
    assert entry.action == "client.purged"
    again = run_housekeeping(
        runtime.config, runtime.store, runtime.storage, runtime.deleter, now=now
    )
    assert again.clients_purged == []


def test_the_worker_erases_a_caller_on_routers_event_and_stores_replayed_calls_tokenized(
    runtime: Runtime, sim: Sim, publish: Publisher
) -> None:
    """For when recordings could not be reached while router took the erasure."""
    recording = stored_recording(runtime, sim, ev.new_client_id(), CALLER)
    create_app(runtime.config, run_worker=True, run_housekeeping=False, runtime=runtime)
    token = caller_token(runtime.config.privacy_token_secret, CALLER)

    # Keyed as router keys it on the compacted topic.
    erasure = caller_erased(CALLER, token, "admin")
    publish.producer.publish(publish.topics.client_events, erasure, erased_key(token), timeout=10)

    def erased() -> bool:
        # The whole erasure: the file deleted, the number forgotten, the token kept.
        found = runtime.store.recording(recording.recording_sid)
        return (
            found is not None
            and found.status == "deleted"
            and runtime.store.caller_recordings_everywhere(CALLER) == []
            and runtime.store.is_erased(token)
            and bool(runtime.store.audit_log(10, f"caller:{token}"))
        )

    wait_until(erased, timeout=20.0, message="the caller erased")
    [entry] = runtime.store.audit_log(10, f"caller:{token}")
    assert (entry.who, entry.action) == ("system:erasure", "caller.erased")

    replayed = "CA" + "7" * 32
    publish.call_event(ev.received(replayed, CALLER))

    def stored_caller() -> str | None:
        with psycopg.connect(runtime.config.database_url) as conn:
            row = conn.execute(
                "SELECT caller FROM recordings.calls WHERE call_sid = %s", (replayed,)
            ).fetchone()
        return None if row is None else str(row[0])

    assert wait_until(stored_caller, timeout=20.0, message="the replayed call stored") == token
