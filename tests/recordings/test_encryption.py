"""Recordings encrypted at rest in the folder store: sealed on disk, played back exactly.

Recordings are stored through the service's own archive step from the real
simulator and played through the signed media route, so what is checked is
what a browser gets: the original bytes, whole or by range, from files that
hold no plaintext, across a key rotation, and a clear error for a file
damaged on disk.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from services.recordings.app import Runtime, build_runtime, create_app
from services.recordings.config import Config, ConfigError
from services.recordings.encryption import CHUNK_BYTES, MAGIC, Keyring, SealedStorage, parse_header
from services.recordings.metadata import Recording
from services.recordings.storage import IntegrityError, LocalFolderStorage, new_part_key
from tests.recordings import recording_events as ev
from tests.recordings.conftest import ADMIN, Sim
from tests.recordings.seeding import stored_recording

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
OLD_KEY, NEW_KEY = os.urandom(32), os.urandom(32)


@pytest.fixture
def http(runtime: Runtime) -> Iterator[FlaskClient]:
    app = create_app(runtime.config, run_worker=False, run_housekeeping=False, runtime=runtime)
    yield app.test_client()


def playback_path(http: FlaskClient, recording: Recording) -> str:
    reply = http.get(f"/api/twilio/recording/{recording.call_sid}", headers=ADMIN_HEADERS)
    [item] = [
        r for r in reply.get_json()["recordings"] if r["recordingSid"] == recording.recording_sid
    ]
    url: str = item["playbackUrl"]
    return url.removeprefix("http://edge.test")


def on_disk(runtime: Runtime, recording: Recording) -> Path:
    return Path(runtime.config.storage_dir) / str(recording.storage_key)


def test_a_stored_recording_is_not_plaintext_on_disk(
    runtime: Runtime, sim: Sim, http: FlaskClient
) -> None:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    original = sim.media(recording.recording_sid)
    sealed = on_disk(runtime, recording).read_bytes()
    assert original.startswith(b"RIFF")
    assert sealed.startswith(MAGIC)
    assert b"RIFF" not in sealed and b"WAVE" not in sealed
    assert original[1000:1032] not in sealed
    assert recording.sha256 == hashlib.sha256(original).hexdigest()
    assert recording.bytes == len(original)


def test_playback_and_ranges_return_exactly_the_original_bytes(
    runtime: Runtime, sim: Sim, http: FlaskClient
) -> None:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    original = sim.media(recording.recording_sid)
    size = len(original)
    assert size > 2 * CHUNK_BYTES, "the recording spans several chunks"
    url = playback_path(http, recording)

    whole = http.get(url)
    assert whole.status_code == 200 and whole.data == original
    assert int(whole.headers["Content-Length"]) == size
    ranges = {
        "bytes=0-0": original[:1],
        f"bytes={CHUNK_BYTES - 10}-{CHUNK_BYTES + 9}": original[
            CHUNK_BYTES - 10 : CHUNK_BYTES + 10
        ],
        f"bytes={CHUNK_BYTES - 1}-{2 * CHUNK_BYTES}": original[
            CHUNK_BYTES - 1 : 2 * CHUNK_BYTES + 1
        ],
        f"bytes={CHUNK_BYTES}-{CHUNK_BYTES}": original[CHUNK_BYTES : CHUNK_BYTES + 1],
        "bytes=-100": original[-100:],
        f"bytes=-{size - 3}": original[3:],
        f"bytes={size - CHUNK_BYTES - 7}-": original[size - CHUNK_BYTES - 7 :],
    }
    for header, expected in ranges.items():
        part = http.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.data == expected, header
        assert int(part.headers["Content-Length"]) == len(expected), header


def test_a_key_rotation_keeps_old_files_playable_and_seals_new_ones_with_the_new_key(
    config: Config, sim: Sim
) -> None:
    before = replace(config, encryption_keys=(("k1", OLD_KEY),), encryption_key_id="k1")
    after = replace(
        config, encryption_keys=(("k1", OLD_KEY), ("k2", NEW_KEY)), encryption_key_id="k2"
    )
    first = build_runtime(before)
    try:
        old = stored_recording(first, sim, ev.new_client_id())
    finally:
        first.close()
    second = build_runtime(after)
    try:
        new = stored_recording(second, sim, ev.new_client_id())
        http = create_app(after, run_worker=False, run_housekeeping=False, runtime=second)
        client = http.test_client()
        for recording in (old, new):
            played = client.get(playback_path(client, recording))
            assert played.status_code == 200
            assert played.data == sim.media(recording.recording_sid)
        old_header = parse_header(on_disk(second, old).read_bytes())
        new_header = parse_header(on_disk(second, new).read_bytes())
        assert old_header is not None and old_header.key_id == "k1"
        assert new_header is not None and new_header.key_id == "k2"
    finally:
        second.close()


@pytest.mark.parametrize("where", ["first chunk", "second chunk", "magic", "key id", "last byte"])
def test_a_file_changed_on_disk_fails_to_play_with_a_clear_error(
    where: str, runtime: Runtime, sim: Sim, http: FlaskClient
) -> None:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    path = on_disk(runtime, recording)
    sealed = bytearray(path.read_bytes())
    header = parse_header(bytes(sealed))
    assert header is not None
    offset = {
        "first chunk": len(header.raw) + 500,
        "second chunk": len(header.raw) + header.sealed_chunk + 10,
        "magic": 0,
        "key id": len(header.raw) - 16 - 8 - 1,
        "last byte": len(sealed) - 1,
    }[where]
    sealed[offset] ^= 0x01
    path.write_bytes(bytes(sealed))
    url = playback_path(http, recording)

    for headers in ({}, {"Range": "bytes=-100" if where == "last byte" else "bytes=0-70000"}):
        reply = http.get(url, headers=headers)
        assert reply.status_code == 500, (headers, reply.status_code)
        assert reply.get_json()["error"]["code"] == "recording_integrity_failed"
        assert b"RIFF" not in reply.data
    entries = runtime.store.audit_log(target=recording.recording_sid)
    assert "recording.integrity-failed" in [e.action for e in entries]


def test_a_recording_stored_before_encryption_still_plays(
    runtime: Runtime, sim: Sim, http: FlaskClient
) -> None:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    original = sim.media(recording.recording_sid)
    # What the folder store wrote before this change: the media as it came.
    plain = LocalFolderStorage(runtime.config.storage_dir)
    part = new_part_key(recording.recording_sid)
    plain.write_part(part, iter([original]))
    plain.promote(part, str(recording.storage_key))
    assert on_disk(runtime, recording).read_bytes() == original
    url = playback_path(http, recording)
    assert http.get(url).data == original
    assert http.get(url, headers={"Range": "bytes=-100"}).data == original[-100:]


def production_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for name in list(os.environ):
        if name.startswith(("RECORDINGS_", "TWILIO_")):
            monkeypatch.delenv(name)
    env = {
        "SWITCHBOARD_ENV": "production",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing",
        "ADMIN_API_TOKEN": "a" * 40,
        "RECORDINGS_LINK_SECRET": "b" * 40,
        "PRIVACY_TOKEN_SECRET": "c" * 40,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_production_without_encryption_keys_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production_env(monkeypatch)
    with pytest.raises(ConfigError, match="RECORDINGS_ENCRYPTION_KEYS"):
        Config.from_env()
    production_env(monkeypatch, RECORDINGS_S3_BUCKET="recordings")
    assert Config.from_env().s3 is not None, "a bucket encrypts server-side, without our keys"


def test_encryption_keys_are_read_with_the_current_key_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = base64.b64encode(OLD_KEY).decode(), base64.b64encode(NEW_KEY).decode()
    production_env(monkeypatch, RECORDINGS_ENCRYPTION_KEYS=f"k1:{old}")
    config = Config.from_env()
    assert config.encryption_keys == (("k1", OLD_KEY),) and config.encryption_key_id == "k1"
    production_env(
        monkeypatch,
        RECORDINGS_ENCRYPTION_KEYS=f"k1:{old}, k2:{new}",
        RECORDINGS_ENCRYPTION_KEY_ID="k2",
    )
    config = Config.from_env()
    assert dict(config.encryption_keys) == {"k1": OLD_KEY, "k2": NEW_KEY}
    assert config.encryption_key_id == "k2"
    bad = {
        "RECORDINGS_ENCRYPTION_KEY_ID": {"RECORDINGS_ENCRYPTION_KEYS": f"k1:{old},k2:{new}"},
        "not base64": {"RECORDINGS_ENCRYPTION_KEYS": "k1:???"},
        "32 bytes": {"RECORDINGS_ENCRYPTION_KEYS": "k1:" + base64.b64encode(b"short").decode()},
        "is not one of": {
            "RECORDINGS_ENCRYPTION_KEYS": f"k1:{old}",
            "RECORDINGS_ENCRYPTION_KEY_ID": "k9",
        },
        "id:base64key": {"RECORDINGS_ENCRYPTION_KEYS": old},
    }
    for message, env in bad.items():
        production_env(monkeypatch, **env)
        with pytest.raises(ConfigError, match=message):
            Config.from_env()


def test_chunks_swapped_spliced_from_another_file_or_cut_off_fail_authentication(
    tmp_path: Path,
) -> None:
    sealed = SealedStorage(LocalFolderStorage(tmp_path), Keyring("k1", {"k1": OLD_KEY}))
    bodies = {name: os.urandom(3 * CHUNK_BYTES + 100) for name in ("a.wav", "b.wav")}
    for name, body in bodies.items():
        part = new_part_key("RE1")
        sealed.write_part(part, iter([body]))
        sealed.promote(part, name)
        assert b"".join(sealed.read(name)) == body
    raw = (tmp_path / "a.wav").read_bytes()
    other = (tmp_path / "b.wav").read_bytes()
    header = parse_header(raw)
    assert header is not None
    start, step = len(header.raw), header.sealed_chunk
    chunk = [raw[start + i * step : start + (i + 1) * step] for i in range(4)]
    damaged = {
        "swapped": header.raw + chunk[1] + chunk[0] + chunk[2] + chunk[3],
        "spliced": header.raw + other[start : start + step] + b"".join(chunk[1:]),
        "cut at a chunk boundary": header.raw + b"".join(chunk[:3]),
        "longer": raw + os.urandom(20),
    }
    for what, data in damaged.items():
        (tmp_path / "a.wav").write_bytes(data)
        with pytest.raises(IntegrityError):
            b"".join(sealed.read("a.wav"))
            pytest.fail(f"{what} file was read")
