"""The HTTP API: a call's recordings, signed playback and download, access, deletion, erasure."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask.testing import FlaskClient

from services.recordings import links
from services.recordings.app import Runtime, create_app
from tests.recordings import recording_events as ev
from tests.recordings.conftest import ADMIN, Sim
from tests.recordings.seeding import stored_recording
from tests.recordings.stand_ins import KeyIntrospection
from tests.support import api_key

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def http(runtime: Runtime) -> Iterator[FlaskClient]:
    app = create_app(runtime.config, run_worker=False, run_housekeeping=False, runtime=runtime)
    yield app.test_client()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def local(url: str) -> str:
    """The path and query of a public link, to request it from this app directly."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def listing(http: FlaskClient, call_sid: str, headers: dict[str, str]) -> Any:
    reply = http.get(f"/api/twilio/recording/{call_sid}", headers=headers)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["recordings"]


def test_recordings_of_a_call_are_listed_with_signed_links_that_expire_in_15_minutes(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    client_id = ev.new_client_id()
    recording = stored_recording(runtime, sim, client_id)
    before = time.time()
    [item] = listing(http, recording.call_sid, ADMIN_HEADERS)
    assert item["recordingSid"] == recording.recording_sid
    assert item["callSid"] == recording.call_sid
    assert item["clientId"] == client_id
    assert item["status"] == "stored"
    assert item["channels"] == 2
    assert item["bytes"] == recording.bytes
    assert item["durationSec"] == recording.duration_sec
    for name in ("playbackUrl", "downloadUrl"):
        assert item[name].startswith(
            f"http://edge.test/api/recordings/media/{recording.recording_sid}?"
        )
    expires = int(dict(parse_qsl(urlsplit(item["playbackUrl"]).query))["exp"])
    assert int(before) + 900 <= expires <= time.time() + 900
    assert item["expiresAt"].endswith("Z")


def test_a_voicemail_is_stored_like_a_call_recording_and_listed_as_a_voicemail(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    client_id = ev.new_client_id()
    call = stored_recording(runtime, sim, client_id)
    voicemail = stored_recording(runtime, sim, client_id, channels=1, source="RecordVerb")
    assert (call.kind, voicemail.kind) == ("call", "voicemail")
    [item] = listing(http, voicemail.call_sid, ADMIN_HEADERS)
    assert (item["recordingSid"], item["status"], item["kind"]) == (
        voicemail.recording_sid,
        "stored",
        "voicemail",
    )
    played = http.get(local(item["playbackUrl"]))
    assert played.status_code == 200
    assert hashlib.sha256(played.data).hexdigest() == voicemail.sha256
    assert listing(http, call.call_sid, ADMIN_HEADERS)[0]["kind"] == "call"


def test_playback_link_serves_the_stored_audio_with_range_requests_for_seeking(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    [item] = listing(http, recording.call_sid, ADMIN_HEADERS)
    url = local(item["playbackUrl"])
    size = int(recording.bytes or 0)

    whole = http.get(url)
    assert whole.status_code == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Content-Disposition"].startswith("inline")
    assert int(whole.headers["Content-Length"]) == size
    assert hashlib.sha256(whole.data).hexdigest() == recording.sha256
    assert whole.data == sim.media(recording.recording_sid)

    part = http.get(url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{size}"
    assert part.headers["Content-Length"] == "1000"
    assert part.data == whole.data[100:1100]

    tail = http.get(url, headers={"Range": "bytes=-44"})
    assert tail.status_code == 206
    assert tail.data == whole.data[-44:]

    open_ended = http.get(url, headers={"Range": f"bytes={size - 10}-"})
    assert open_ended.status_code == 206 and open_ended.data == whole.data[-10:]

    beyond = http.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"
    assert http.get(url, headers={"Range": "bytes=9-3"}).status_code == 416


def test_download_link_names_the_file_after_the_call_and_the_recording(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    [item] = listing(http, recording.call_sid, ADMIN_HEADERS)
    reply = http.get(local(item["downloadUrl"]))
    assert reply.status_code == 200
    assert reply.headers["Content-Disposition"] == (
        f'attachment; filename="{recording.call_sid}-{recording.recording_sid}.wav"'
    )
    assert hashlib.sha256(reply.data).hexdigest() == recording.sha256


def test_a_tampered_or_expired_link_gets_403(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    [item] = listing(http, recording.call_sid, ADMIN_HEADERS)
    query = dict(parse_qsl(urlsplit(item["playbackUrl"]).query))
    path = urlsplit(item["playbackUrl"]).path

    def get(args: dict[str, str]) -> int:
        return http.get(path, query_string=args).status_code

    assert get(query) == 200
    assert get({**query, "exp": str(int(query["exp"]) + 3600)}) == 403
    assert get({**query, "disposition": "attachment"}) == 403
    assert (
        get({**query, "sig": query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")}) == 403
    )
    assert get({k: v for k, v in query.items() if k != "sig"}) == 403
    other = stored_recording(runtime, sim, ev.new_client_id())
    assert (
        http.get(f"/api/recordings/media/{other.recording_sid}", query_string=query).status_code
        == 403
    )

    expired = links.mint(
        runtime.config.link_secret,
        recording.recording_sid,
        "inline",
        "admin",
        now=time.time() - 901,
        ttl=900,
    )
    reply = http.get(local(expired.url("http://edge.test", runtime.config.link_secret)))
    assert reply.status_code == 403
    assert "expired" in reply.get_json()["error"]["message"]


def test_a_client_key_sees_its_own_recordings_and_gets_404_for_another_clients(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
    keys: KeyIntrospection,
) -> None:
    """Client API keys are issued and introspected by router; its real endpoint
    (POST /internal/keys/introspect) comes with the numbers issue. Here a real
    HTTP stand-in answers it, so the service resolves keys exactly as it will."""
    mine, theirs = ev.new_client_id(), ev.new_client_id()
    my_key = keys.issue(api_key("live_mine"), mine, "key-1")
    own = stored_recording(runtime, sim, mine)
    foreign = stored_recording(runtime, sim, theirs)

    [item] = listing(http, own.call_sid, bearer(my_key))
    assert item["recordingSid"] == own.recording_sid
    assert http.get(local(item["playbackUrl"])).status_code == 200

    assert (
        http.get(f"/api/twilio/recording/{foreign.call_sid}", headers=bearer(my_key)).status_code
        == 404
    )
    assert (
        http.get(
            f"/api/clients/{theirs}/recordings/{foreign.recording_sid}", headers=bearer(my_key)
        ).status_code
        == 404
    )
    assert (
        http.delete(
            f"/api/clients/{theirs}/recordings/{foreign.recording_sid}", headers=bearer(my_key)
        ).status_code
        == 404
    )
    assert (
        http.delete(
            f"/api/clients/{mine}/recordings/{foreign.recording_sid}", headers=bearer(my_key)
        ).status_code
        == 404
    )
    assert (
        http.post(
            f"/api/clients/{theirs}/recordings/erasure",
            headers=bearer(my_key),
            json={"phoneNumber": "+14155550123"},
        ).status_code
        == 404
    )
    assert runtime.store.recording(foreign.recording_sid).stored  # type: ignore[union-attr]
    assert (
        http.get(f"/api/twilio/recording/{foreign.call_sid}", headers=ADMIN_HEADERS).status_code
        == 200
    )


def test_requests_without_a_valid_token_are_refused(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    assert http.get("/api/twilio/recording/CA123").status_code == 401
    assert (
        http.get("/api/twilio/recording/CA123", headers=bearer("sk_nobody_issued")).status_code
        == 403
    )
    assert http.get("/api/twilio/recording/CA" + "0" * 32, headers=ADMIN_HEADERS).status_code == 404


def test_deleting_a_recording_removes_the_file_and_twilios_copy_and_keeps_a_tombstone(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    client_id = ev.new_client_id()
    recording = stored_recording(runtime, sim, client_id)
    [item] = listing(http, recording.call_sid, ADMIN_HEADERS)
    path = Path(runtime.config.storage_dir) / str(recording.storage_key)
    assert path.is_file() and sim.has_recording(recording.recording_sid)

    reply = http.delete(
        f"/api/clients/{client_id}/recordings/{recording.recording_sid}", headers=ADMIN_HEADERS
    )
    assert reply.status_code == 200, reply.get_json()
    body = reply.get_json()
    assert body["status"] == "deleted" and body["deletionReason"] == "request"
    assert body["playbackUrl"] is None
    assert not path.exists()
    assert not sim.has_recording(recording.recording_sid)
    tombstone = runtime.store.recording(recording.recording_sid)
    assert tombstone is not None and tombstone.deleted_by == "admin"
    assert tombstone.sha256 == recording.sha256, "metadata is kept for the audit"
    assert http.get(local(item["playbackUrl"])).status_code == 404
    [listed] = listing(http, recording.call_sid, ADMIN_HEADERS)
    assert listed["status"] == "deleted"
    again = http.delete(
        f"/api/clients/{client_id}/recordings/{recording.recording_sid}", headers=ADMIN_HEADERS
    )
    assert again.status_code == 200 and again.get_json()["status"] == "deleted"


def test_erasure_deletes_every_recording_of_that_caller_for_the_client_and_nothing_else(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
) -> None:
    client_id, other_client = ev.new_client_id(), ev.new_client_id()
    caller, someone_else = "+447700900123", "+14155550999"
    erased = [stored_recording(runtime, sim, client_id, caller) for _ in range(2)]
    kept = [
        stored_recording(runtime, sim, client_id, someone_else),
        stored_recording(runtime, sim, other_client, caller),
    ]

    reply = http.post(
        f"/api/clients/{client_id}/recordings/erasure",
        headers=ADMIN_HEADERS,
        json={"phoneNumber": caller},
    )
    assert reply.status_code == 200, reply.get_json()
    assert sorted(reply.get_json()["deleted"]) == sorted(r.recording_sid for r in erased)
    for recording in erased:
        tombstone = runtime.store.recording(recording.recording_sid)
        assert tombstone is not None and tombstone.status == "deleted"
        assert tombstone.deletion_reason == "erasure"
        assert not (Path(runtime.config.storage_dir) / str(recording.storage_key)).exists()
    for recording in kept:
        assert runtime.store.recording(recording.recording_sid).stored  # type: ignore[union-attr]
    assert runtime.store.caller_recordings(client_id, caller) == []
    assert (
        http.post(
            f"/api/clients/{client_id}/recordings/erasure",
            headers=ADMIN_HEADERS,
            json={"phoneNumber": "0155"},
        ).status_code
        == 400
    )


def test_every_access_is_audited_and_the_audit_is_for_the_admin(
    runtime: Runtime,
    sim: Sim,
    http: FlaskClient,
    keys: KeyIntrospection,
) -> None:
    client_id = ev.new_client_id()
    key = keys.issue(api_key("live_audit"), client_id, "key-7")
    recording = stored_recording(runtime, sim, client_id)
    [item] = listing(http, recording.call_sid, bearer(key))
    http.get(local(item["playbackUrl"]), headers={"Range": "bytes=0-99"})
    http.get(local(item["downloadUrl"]))
    http.delete(
        f"/api/clients/{client_id}/recordings/{recording.recording_sid}", headers=bearer(key)
    )

    assert http.get("/api/recordings/audit", headers=bearer(key)).status_code == 403
    reply = http.get(
        "/api/recordings/audit", headers=ADMIN_HEADERS, query_string={"clientId": client_id}
    )
    assert reply.status_code == 200
    entries = list(reversed(reply.get_json()["entries"]))
    who = f"client:{client_id}:key:key-7"
    assert [(e["who"], e["action"]) for e in entries] == [
        (who, "recordings.listed"),
        (f"link:{who}", "recording.played"),
        (f"link:{who}", "recording.downloaded"),
        (who, "recording.deleted"),
    ]
    assert entries[1]["target"] == recording.recording_sid
    assert entries[1]["detail"]["range"] == [0, 99]
    assert all(e["at"].endswith("Z") for e in entries)
