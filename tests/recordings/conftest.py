"""Recordings test fixtures: the real simulator, this test's database, topics and storage.

The Twilio simulator runs once per session as `python -m services.twilio_sim`.
`recorded_call` plays an answered, recorded call on it and returns the
recording status callback's fields exactly as the simulator produced them,
which is what ingress would put into a recording.status-reported event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.rest import Client

from services.recordings import store
from services.recordings.app import Runtime, build_runtime
from services.recordings.config import Config
from services.recordings.consumer import RecordingsWorker
from services.recordings.twilio_rest import RewritingHttpClient
from switchboard.kafka import Topics
from tests.recordings.recording_events import Publisher
from tests.recordings.stand_ins import KeyIntrospection
from tests.support import ServiceProcess, wait_until

ACCOUNT_SID = "AC" + "7e" * 16
AUTH_TOKEN = "recordings-test-token"
ADMIN = "recordings-admin-token"
# Nothing listens here: the simulator logs the callback it could not deliver.
NOWHERE = "http://127.0.0.1:9/recording-status"


@dataclass(frozen=True)
class Sim:
    url: str
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN

    def client(self) -> Client:
        return Client(self.account_sid, self.auth_token, http_client=RewritingHttpClient(self.url))

    def recording_path(self, recording_sid: str) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def media(self, recording_sid: str, ext: str = "wav") -> bytes:
        reply = requests.get(
            f"{self.url}{self.recording_path(recording_sid)}.{ext}",
            auth=(self.account_sid, self.auth_token),
            timeout=10,
        )
        reply.raise_for_status()
        return reply.content

    def has_recording(self, recording_sid: str) -> bool:
        reply = requests.get(
            f"{self.url}{self.recording_path(recording_sid)}.json",
            auth=(self.account_sid, self.auth_token),
            timeout=10,
        )
        return reply.status_code == 200

    def recorded_call(self, channels: int = 2) -> dict[str, str]:
        """Play a recorded outbound call; the recording status callback's fields."""
        call = self.client().calls.create(
            to="+14155550199",
            from_="+14155550100",
            twiml='<Response><Say>Thanks for calling.</Say><Pause length="3"/></Response>',
            record=True,
            recording_channels="dual" if channels == 2 else "mono",
            recording_status_callback=NOWHERE,
        )

        def finished() -> dict[str, Any] | None:
            play: dict[str, Any] = requests.get(
                f"{self.url}/sim/calls/{call.sid}", params={"wait": 5}, timeout=15
            ).json()
            return play if play["state"] == "finished" else None

        play = wait_until(finished, message=f"recorded call {call.sid} over")
        [callback] = [c for c in play["callbacks"] if c["kind"] == "recording-status"]
        params: dict[str, str] = callback["params"]
        return params


@pytest.fixture(scope="session")
def sim() -> Iterator[Sim]:
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    with ServiceProcess("twilio_sim", env) as process:
        yield Sim(process.url)


@pytest.fixture
def keys() -> Iterator[KeyIntrospection]:
    with KeyIntrospection() as server:
        yield server


def make_config(
    pg_url: str,
    kafka_bootstrap: str,
    topics: Topics,
    sim: Sim,
    storage_dir: Path,
    router_url: str = "http://127.0.0.1:9",
    **overrides: Any,
) -> Config:
    config = Config(
        database_url=pg_url,
        admin_token=ADMIN,
        twilio_account_sid=sim.account_sid,
        twilio_auth_token=sim.auth_token,
        link_secret="test-link-secret-0123456789",
        kafka_bootstrap=kafka_bootstrap,
        topics=topics,
        router_url=router_url,
        public_base_url="http://edge.test",
        twilio_api_base_url=sim.url,
        storage_dir=str(storage_dir),
        group_id=f"recordings-{uuid.uuid4().hex[:8]}",
        download_attempts=3,
        download_backoff_seconds=0.05,
        download_timeout_seconds=10,
    )
    return replace(config, **overrides)


@pytest.fixture
def config(
    pg_url: str,
    kafka_bootstrap: str,
    topics: Topics,
    sim: Sim,
    tmp_path: Path,
    keys: KeyIntrospection,
) -> Config:
    store.apply_migrations(pg_url)
    return make_config(
        pg_url, kafka_bootstrap, topics, sim, tmp_path / "recordings", router_url=keys.url
    )


@pytest.fixture
def runtime(config: Config) -> Iterator[Runtime]:
    built = build_runtime(config)
    built.storage.check()
    yield built
    built.close()


@pytest.fixture
def start_worker(runtime: Runtime) -> Iterator[Callable[[], RecordingsWorker]]:
    """Starts the worker in this process on the test's topics (stopped afterwards)."""
    started: list[RecordingsWorker] = []

    def start() -> RecordingsWorker:
        worker = RecordingsWorker(runtime.config, runtime.store, runtime.archiver, runtime.producer)
        runtime.worker = worker
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def publish(kafka_bootstrap: str, topics: Topics) -> Iterator[Publisher]:
    publisher = Publisher(kafka_bootstrap, topics)
    yield publisher
    publisher.close()
