"""`switchboard reporting` refuses unsafe or broken settings before it touches anything."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack import REPO_ROOT
from services.reporting.config import KafkaSettings
from tests.support import free_port

SAFE = {
    "SWITCHBOARD_ENV": "production",
    "SWITCHBOARD_ENV_FILE": os.devnull,
    "ADMIN_API_TOKEN": "a" * 40,
    "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
    "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    "SMTP_URL": "smtps://mail.example:465",
    "PRIVACY_TOKEN_SECRET": "p" * 40,
}


def start(**changes: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SAFE}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env.pop("REPORTING_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "services.reporting"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"REPORTING_CLOCK_FILE": "/tmp/clock"}, "REPORTING_CLOCK_FILE is set"),
        ({"SMTP_URL": None}, "SMTP_URL is not set"),
    ],
)
def test_production_refuses_an_injected_clock_and_no_smtp_server(
    changes: dict[str, str | None], named: str
) -> None:
    result = start(**changes)
    assert result.returncode == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if named in line]
    assert line.startswith("reporting: configuration error:") and "refused in production" in line


def test_a_bad_smtp_url_is_a_configuration_error() -> None:
    result = start(SMTP_URL="http://mail.example")
    assert result.returncode == 2 and "SMTP_URL must be" in result.stderr


def test_an_unreachable_database_exits_1_naming_it() -> None:
    result = start()
    assert result.returncode == 1, result.stderr
    assert "PostgreSQL at 127.0.0.1" in result.stderr and "not reachable" in result.stderr


def test_the_faust_app_takes_production_replication_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", "production")
    monkeypatch.delenv("KAFKA_REPLICATION_FACTOR", raising=False)
    assert KafkaSettings.from_env().replication_factor == 3
    monkeypatch.setenv("SWITCHBOARD_ENV", "development")
    assert KafkaSettings.from_env().replication_factor == 1
    monkeypatch.setenv("REPORTING_PARTITIONS", "not a number")
    assert KafkaSettings.from_env().partitions == 3
