"""`python -m services.recordings`: clear failures before serving, health once it serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import requests

from devstack import REPO_ROOT
from services.recordings import store
from switchboard.kafka import Topics
from tests.recordings.conftest import ADMIN, Sim
from tests.support import ServiceProcess, free_port


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("RECORDINGS_", "TWILIO_"))}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "services.recordings", *args],
        env=full,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def base_env(pg_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_url,
        "ADMIN_API_TOKEN": ADMIN,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "token",
    }


def test_a_bad_setting_stops_start_up_with_exit_2_naming_the_variable(pg_url: str) -> None:
    result = run([], {**base_env(pg_url), "TWILIO_ACCOUNT_SID": "nope"})
    assert result.returncode == 2
    assert "TWILIO_ACCOUNT_SID" in result.stderr
    result = run([], {**base_env(pg_url), "RECORDINGS_MEDIA_FORMAT": "ogg"})
    assert result.returncode == 2 and "RECORDINGS_MEDIA_FORMAT" in result.stderr


def test_production_without_encryption_keys_stops_start_up_naming_the_variable(
    pg_url: str,
) -> None:
    production = {
        **base_env(pg_url),
        "SWITCHBOARD_ENV": "production",
        "ADMIN_API_TOKEN": "a" * 40,
        "RECORDINGS_LINK_SECRET": "b" * 40,
        "PRIVACY_TOKEN_SECRET": "c" * 40,
    }
    result = run([], production)
    assert result.returncode == 2
    assert "RECORDINGS_ENCRYPTION_KEYS" in result.stderr


def test_an_unreachable_database_stops_start_up_with_exit_1() -> None:
    env = base_env(f"postgresql://nobody@127.0.0.1:{free_port()}/nothing")
    result = run([], env)
    assert result.returncode == 1
    assert "not reachable" in result.stderr


def test_migrate_only_applies_the_migrations_and_exits(pg_url: str) -> None:
    result = run(["--migrate-only"], base_env(pg_url))
    assert result.returncode == 0, result.stderr
    assert store.applied_migrations(pg_url) == [(m.version, m.name) for m in store.migrations()]


def test_recordings_database_url_overrides_database_url(pg_url: str) -> None:
    env = {**base_env("postgresql://nobody@127.0.0.1:1/wrong"), "RECORDINGS_DATABASE_URL": pg_url}
    assert run(["--migrate-only"], env).returncode == 0
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM recordings.schema_migrations").fetchone()


def test_the_service_serves_health_and_readiness(
    pg_url: str,
    kafka_bootstrap: str,
    topics: Topics,
    sim: Sim,
    tmp_path: Path,
) -> None:
    env = {
        **base_env(pg_url),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topics.prefix,
        "TWILIO_API_BASE_URL": sim.url,
        "RECORDINGS_STORAGE_DIR": str(tmp_path / "store"),
    }
    with ServiceProcess("recordings", env, log_dir=tmp_path) as service:
        assert requests.get(f"{service.url}/healthz", timeout=5).json() == {"status": "ok"}
        ready = requests.get(f"{service.url}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["storage"] == f"folder {tmp_path / 'store'}, encrypted (key dev)"
        assert requests.get(f"{service.url}/api/twilio/recording/CA1", timeout=5).status_code == 401
