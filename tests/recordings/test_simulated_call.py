"""A simulated call, end to end: simulator -> ingress -> router -> Kafka -> recordings.

The simulator places a caller's call to a tracked number; ingress and router
(real processes) answer it with the recording disclaimer and a recorded
<Dial>; the simulator records the call and posts the recording status
callback to ingress; the recordings service (a real process) fetches the
WAV from the simulator, stores it and serves it through signed links.
Client settings arrive on the client-events topic as router will publish
them (router does not produce client.settings-changed yet).
"""

from __future__ import annotations

import hashlib
import io
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from switchboard.kafka import Topics, ensure_topics
from tests.recordings import recording_events as ev
from tests.recordings.conftest import ADMIN, Sim
from tests.recordings.recording_events import Publisher
from tests.support import ServiceProcess, free_port, wait_until

HEADERS = {"Authorization": f"Bearer {ADMIN}"}


@dataclass
class Chain:
    ingress: ServiceProcess
    router: ServiceProcess
    recordings: ServiceProcess
    publisher: Publisher
    storage_dir: Path

    def new_client(self, forward_to: str) -> str:
        reply = requests.post(
            f"{self.router.url}/api/clients",
            headers=HEADERS,
            timeout=10,
            json={"name": f"client {uuid.uuid4().hex[:6]}", "forwardTo": forward_to},
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def assign(self, client_id: str, number: str) -> None:
        reply = requests.post(
            f"{self.router.url}/api/clients/{client_id}/numbers",
            headers=HEADERS,
            timeout=10,
            json={
                "phoneNumber": number,
                "record": True,
                "recordingDisclaimer": "This call may be recorded.",
            },
        )
        assert reply.status_code == 201, reply.text

    def recordings_of(self, call_sid: str) -> list[dict[str, Any]]:
        reply = requests.get(
            f"{self.recordings.url}/api/twilio/recording/{call_sid}", headers=HEADERS, timeout=10
        )
        if reply.status_code == 404:
            return []
        assert reply.status_code == 200, reply.text
        found: list[dict[str, Any]] = reply.json()["recordings"]
        return found

    def media(self, link: str, **headers: str) -> requests.Response:
        parts = urlsplit(link)
        return requests.get(
            f"{self.recordings.url}{parts.path}?{parts.query}", headers=headers, timeout=10
        )


@pytest.fixture(scope="module")
def chain(
    sim: Sim, kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    folder = tmp_path_factory.mktemp("chain")
    database = f"rec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    topics = Topics(prefix=f"rec{uuid.uuid4().hex[:8]}.")
    ensure_topics(kafka_bootstrap, topics)
    ports = {name: free_port() for name in ("ingress", "router", "recordings")}
    ingress_url = f"http://127.0.0.1:{ports['ingress']}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topics.prefix,
        "DATABASE_URL": postgres_url.rsplit("/", 1)[0] + f"/{database}",
        "ADMIN_API_TOKEN": ADMIN,
        "TWILIO_ACCOUNT_SID": sim.account_sid,
        "TWILIO_AUTH_TOKEN": sim.auth_token,
        "TWILIO_VALIDATE_SIGNATURES": "true",
        "TWILIO_API_BASE_URL": sim.url,
        "PUBLIC_BASE_URL": ingress_url,  # Twilio's callbacks reach ingress directly
        "TWILIO_WEBHOOK_URL": "",
        "ROUTER_URL": f"http://127.0.0.1:{ports['router']}",
        "INGRESS_SPOOL_DIR": str(folder / "spool"),
        "RECORDINGS_STORAGE_DIR": str(folder / "recordings"),
    }
    started: list[ServiceProcess] = []
    try:
        for name in ("router", "ingress", "recordings"):
            started.append(ServiceProcess(name, env, port=ports[name], log_dir=folder).start())
        publisher = Publisher(kafka_bootstrap, topics)
        yield Chain(started[1], started[0], started[2], publisher, folder / "recordings")
        publisher.close()
    finally:
        for process in reversed(started):
            process.stop()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def place_recorded_call(sim: Sim, chain: Chain, delete_from_twilio: bool) -> tuple[str, str]:
    """A caller's answered call to a fresh tracked number of a new client; (clientId, CallSid)."""
    number = "+1415" + str(uuid.uuid4().int)[:7]
    client_id = chain.new_client("+14155559999")
    chain.assign(client_id, number)
    chain.publisher.client_event(
        ev.settings_changed(client_id, retention_days=90, delete_from_twilio=delete_from_twilio)
    )
    reply = requests.post(
        f"{sim.url}/sim/numbers",
        timeout=10,
        json={"phoneNumber": number, "voiceUrl": f"{chain.ingress.url}/api/twilio/webhook"},
    )
    assert reply.status_code in (200, 201), reply.text
    reply = requests.post(
        f"{sim.url}/sim/calls",
        timeout=10,
        json={"from": "+14155550123", "to": number, "outcome": "completed", "talkSeconds": 12},
    )
    assert reply.status_code == 202, reply.text
    call_sid = str(reply.json()["callSid"])
    play = requests.get(f"{sim.url}/sim/calls/{call_sid}", params={"wait": 20}, timeout=30).json()
    assert play["state"] == "finished" and play["recordingSids"], play
    return client_id, call_sid


def stored(chain: Chain, call_sid: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = chain.recordings_of(call_sid)
        return found[0] if found and found[0]["status"] == "stored" else None

    return wait_until(ready, timeout=30, message=f"recording of {call_sid} stored")


def test_a_simulated_calls_recording_is_stored_with_twilios_checksum_and_plays_by_link(
    sim: Sim,
    chain: Chain,
) -> None:
    client_id, call_sid = place_recorded_call(sim, chain, delete_from_twilio=False)
    item = stored(chain, call_sid)
    assert item["clientId"] == client_id
    assert item["channels"] == 2
    twilio_bytes = sim.media(item["recordingSid"])
    assert item["sha256"] == hashlib.sha256(twilio_bytes).hexdigest()
    assert sim.has_recording(item["recordingSid"])

    whole = chain.media(item["playbackUrl"])
    assert whole.status_code == 200 and whole.content == twilio_bytes
    seek = chain.media(item["playbackUrl"], Range="bytes=1000-1999")
    assert seek.status_code == 206 and seek.content == twilio_bytes[1000:2000]
    assert seek.headers["Content-Range"] == f"bytes 1000-1999/{len(twilio_bytes)}"
    tampered = item["playbackUrl"].replace("disposition=inline", "disposition=attachment")
    assert chain.media(tampered).status_code == 403


def test_the_twilio_copy_is_deleted_once_stored_when_the_client_is_configured_so(
    sim: Sim,
    chain: Chain,
) -> None:
    _, call_sid = place_recorded_call(sim, chain, delete_from_twilio=True)
    item = stored(chain, call_sid)
    wait_until(
        lambda: chain.recordings_of(call_sid)[0]["twilioCopyDeleted"],
        timeout=15,
        message="Twilio copy deleted",
    )
    assert not sim.has_recording(item["recordingSid"])
    download = chain.media(item["downloadUrl"])
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == item["sha256"]
    with wave.open(io.BytesIO(download.content)) as audio:
        assert audio.getnchannels() == 2 and audio.getnframes() > 0
