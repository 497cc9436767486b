"""A worker killed in the middle of a download stores the recording exactly once after restart."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from pathlib import Path

import psycopg

from devstack import REPO_ROOT
from devstack.processes import Child
from services.recordings.config import DEV_ENCRYPTION_KEY, DEV_ENCRYPTION_KEY_ID
from services.recordings.encryption import Keyring, SealedStorage
from services.recordings.storage import LocalFolderStorage
from switchboard.kafka import Topics
from tests.recordings import recording_events as ev
from tests.recordings.conftest import ADMIN, Sim
from tests.recordings.recording_events import Publisher
from tests.recordings.stand_ins import SlowMedia
from tests.support import wait_until


def worker_process(name: str, env: dict[str, str], log_dir: Path) -> Child:
    return Child(
        name,
        [sys.executable, "-m", "services.recordings", "--worker-only"],
        log_dir / f"{name}.log",
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stop_signal=signal.SIGKILL,
    )


def stored_rows(pg_url: str, sid: str) -> list[tuple[str, str]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT status, sha256 FROM recordings.recordings WHERE recording_sid = %s", (sid,)
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


def test_killing_the_worker_mid_download_and_restarting_stores_the_recording_exactly_once(
    sim: Sim,
    pg_url: str,
    kafka_bootstrap: str,
    topics: Topics,
    publish: Publisher,
    tmp_path: Path,
) -> None:
    params = sim.recorded_call(channels=2)
    sid = params["RecordingSid"]
    body = sim.media(sid)
    storage_dir = tmp_path / "recordings"
    # Past the first 64 KiB chunks the worker reads, so some of them reach its part file.
    with SlowMedia({sid: body}, stall_after=len(body) - 1024) as media:
        env = {
            "DATABASE_URL": pg_url,
            "ADMIN_API_TOKEN": ADMIN,
            "TWILIO_ACCOUNT_SID": sim.account_sid,
            "TWILIO_AUTH_TOKEN": sim.auth_token,
            "TWILIO_API_BASE_URL": media.url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": topics.prefix,
            "RECORDINGS_STORAGE_DIR": str(storage_dir),
            "RECORDINGS_GROUP_ID": f"recordings-{topics.prefix}",
        }
        publish.call_event(ev.routed(params["CallSid"], ev.new_client_id()))
        publish.call_event(ev.recording_status(ev.served_by(params, media.url)))

        first = worker_process("recordings-first", env, tmp_path).start()
        try:
            assert media.started.wait(60), first.tail()

            def part_written() -> bool:
                parts = (storage_dir / ".incoming").glob(f"{sid}.*.part")
                return any(part.stat().st_size > 0 for part in parts)

            wait_until(part_written, timeout=10, message="the first bytes in a part")
            os.kill(int(first.pid or 0), signal.SIGKILL)
        finally:
            first.stop()
        assert stored_rows(pg_url, sid) == []

        second = worker_process("recordings-second", env, tmp_path).start()
        try:
            rows = wait_until(
                lambda: stored_rows(pg_url, sid),
                timeout=60,
                message="recording stored after restart",
            )
        finally:
            media.release()
            second.stop()
        assert media.gets[sid] == 2, "downloaded again after the crash"

    assert rows == [("stored", hashlib.sha256(body).hexdigest())]
    files = [p for p in storage_dir.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() != body, "sealed at rest"
    # The worker ran in development, so with the development key.
    keyring = Keyring(DEV_ENCRYPTION_KEY_ID, {DEV_ENCRYPTION_KEY_ID: DEV_ENCRYPTION_KEY})
    sealed = SealedStorage(LocalFolderStorage(storage_dir), keyring)
    assert b"".join(sealed.read(str(files[0].relative_to(storage_dir)))) == body
    assert ".incoming" not in files[0].parts
