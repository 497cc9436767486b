"""Object storage: a folder by default and a real S3-compatible server (moto_server).

Both stores pass the same contract: parts are invisible until promoted,
promotion is all-or-nothing, reads serve byte ranges, deletes are idempotent,
and parts left by a killed download are cleaned. So does the folder store
sealed with our keys, the service's default; a bucket's objects are written
with server-side encryption.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.recordings.config import Config, S3Settings
from services.recordings.encryption import Keyring, SealedStorage
from services.recordings.storage import (
    LocalFolderStorage,
    ObjectMissing,
    S3Storage,
    Storage,
    StorageError,
    new_part_key,
)
from tests.recordings.conftest import Sim
from tests.support import free_port, wait_until

BODY = bytes(range(256)) * 300


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible HTTP server: moto's `moto_server`, on a free port."""
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if server is None:
        pytest.skip("moto_server is not installed (pip install -e '.[test]')")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import requests

        def up() -> bool:
            try:
                return requests.get(endpoint, timeout=1).status_code < 500
            except requests.ConnectionError:
                return False

        wait_until(up, timeout=30, message="moto_server up")
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def s3_storage(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"recordings-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(S3Settings(bucket, s3_endpoint, "us-east-1", "switchboard"))
    storage.client.create_bucket(Bucket=bucket)
    return storage


@pytest.fixture(params=["folder", "sealed folder", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "folder":
        return LocalFolderStorage(tmp_path / "store")
    if request.param == "sealed folder":
        keyring = Keyring("k1", {"k1": os.urandom(32)})
        return SealedStorage(LocalFolderStorage(tmp_path / "store"), keyring)
    result: Storage = request.getfixturevalue("s3_storage")
    return result


def test_a_part_becomes_the_object_only_when_promoted(storage: Storage) -> None:
    storage.check()
    part = new_part_key("RE1")
    assert storage.write_part(part, iter([BODY[:1000], BODY[1000:]])) == len(BODY)
    with pytest.raises(ObjectMissing):
        storage.size("2026/01/02/CA1/RE1.wav")
    assert storage.size(part) == len(BODY)
    storage.promote(part, "2026/01/02/CA1/RE1.wav")
    assert storage.size("2026/01/02/CA1/RE1.wav") == len(BODY)
    with pytest.raises(ObjectMissing):
        storage.size(part)
    assert storage.sha256("2026/01/02/CA1/RE1.wav") == hashlib.sha256(BODY).hexdigest()


def test_every_object_written_to_a_bucket_asks_for_server_side_encryption(
    s3_storage: S3Storage,
) -> None:
    part = new_part_key("RE6")
    s3_storage.write_part(part, iter([BODY]))
    part_head = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key=f"switchboard/{part}")
    assert part_head["ServerSideEncryption"] == "AES256"
    s3_storage.promote(part, "k/RE6.wav")
    head = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key="switchboard/k/RE6.wav")
    assert head["ServerSideEncryption"] == "AES256"


def test_reads_serve_byte_ranges(storage: Storage) -> None:
    part = new_part_key("RE2")
    storage.write_part(part, iter([BODY]))
    storage.promote(part, "k/RE2.wav")
    assert b"".join(storage.read("k/RE2.wav")) == BODY
    assert b"".join(storage.read("k/RE2.wav", 10, 19)) == BODY[10:20]
    assert b"".join(storage.read("k/RE2.wav", len(BODY) - 5)) == BODY[-5:]
    with pytest.raises(ObjectMissing):
        b"".join(storage.read("k/missing.wav"))


def test_delete_is_idempotent(storage: Storage) -> None:
    part = new_part_key("RE3")
    storage.write_part(part, iter([BODY]))
    storage.promote(part, "k/RE3.wav")
    storage.delete("k/RE3.wav")
    storage.delete("k/RE3.wav")
    with pytest.raises(ObjectMissing):
        storage.size("k/RE3.wav")


def test_parts_of_a_killed_download_are_discarded(storage: Storage) -> None:
    left = [new_part_key("RE4"), new_part_key("RE4")]
    other = new_part_key("RE5")
    for part in (*left, other):
        storage.write_part(part, iter([b"partial"]))
    assert storage.discard_parts("RE4") == 2
    assert storage.size(other) == 7
    assert storage.sweep_parts(older_than_seconds=3600) == 0
    time.sleep(1.1)
    assert storage.sweep_parts(older_than_seconds=1) == 1


def test_a_key_cannot_escape_the_storage_folder(tmp_path: Path) -> None:
    storage = LocalFolderStorage(tmp_path / "store")
    with pytest.raises(StorageError):
        storage.write_part("../outside.part", iter([b"x"]))


def test_an_unreachable_bucket_is_a_storage_error(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    storage = S3Storage(S3Settings("no-such-bucket-here", s3_endpoint))
    with pytest.raises(StorageError):
        storage.check()


def test_the_service_stores_and_serves_recordings_from_an_s3_bucket(
    config: Config,
    sim: Sim,
    s3_storage: S3Storage,
) -> None:
    from services.recordings.app import build_runtime, create_app
    from tests.recordings import recording_events as ev
    from tests.recordings.conftest import ADMIN
    from tests.recordings.seeding import stored_recording

    runtime = build_runtime(config, storage=s3_storage)
    try:
        recording = stored_recording(runtime, sim, ev.new_client_id())
        head = s3_storage.client.head_object(
            Bucket=s3_storage.bucket, Key=f"switchboard/{recording.storage_key}"
        )
        assert head["ContentLength"] == recording.bytes
        assert head["ServerSideEncryption"] == "AES256"
        http = create_app(
            config, run_worker=False, run_housekeeping=False, runtime=runtime
        ).test_client()
        [item] = http.get(
            f"/api/twilio/recording/{recording.call_sid}",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).get_json()["recordings"]
        url = item["playbackUrl"].removeprefix("http://edge.test")
        whole = http.get(url)
        assert hashlib.sha256(whole.data).hexdigest() == recording.sha256
        part = http.get(url, headers={"Range": "bytes=44-143"})
        assert part.status_code == 206 and part.data == whole.data[44:144]
        listed = s3_storage.client.list_objects_v2(Bucket=s3_storage.bucket)["Contents"]
        assert [o["Key"] for o in listed] == [f"switchboard/{recording.storage_key}"]
    finally:
        runtime.close()
