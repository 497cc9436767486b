"""`python -m services.router` and its configuration: clear failures, right exit codes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.router.__main__ import main
from services.router.config import Config
from switchboard.settings import ConfigError, load_env_file
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
ROUTER_VARIABLES = (
    "DATABASE_URL",
    "ADMIN_API_TOKEN",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC_PREFIX",
    "ROUTER_BIND",
    "DIAL_TIMEOUT_SECONDS",
    "PUBLIC_BASE_URL",
    "TWILIO_WEBHOOK_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "TWILIO_VOICE_FALLBACK_URL",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No router variables set (a .env file, if any, is already read and then masked)."""
    load_env_file()
    for name in ROUTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    root.handlers[:] = handlers
    root.setLevel(level)


def test_config_reads_the_environment_with_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://router@db:5432/router")
    clean_env.setenv("ADMIN_API_TOKEN", "secret")
    clean_env.setenv("TWILIO_WEBHOOK_URL", "https://calls.example.com/api/twilio/webhook")
    config = Config.from_env()
    assert config.bind == "127.0.0.1:8082"
    assert config.dial_timeout_seconds == 20
    assert config.public_base_url == "https://calls.example.com"
    assert config.topics.call_events == "switchboard.call-events"
    assert config.twilio_configured is False
    assert config.voice_fallback_url.startswith("https://twimlets.com/message?")


def test_config_reads_twilio_credentials_and_the_simulator_url(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://router@db:5432/router")
    clean_env.setenv("ADMIN_API_TOKEN", "secret")
    clean_env.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    clean_env.setenv("TWILIO_AUTH_TOKEN", "token")
    clean_env.setenv("TWILIO_API_BASE_URL", "http://127.0.0.1:8090/")
    config = Config.from_env()
    assert config.twilio_configured is True
    assert config.twilio_api_base_url == "http://127.0.0.1:8090"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ADMIN_API_TOKEN", None),
        ("DATABASE_URL", None),
        ("DATABASE_URL", "mysql://db/router"),
        ("DIAL_TIMEOUT_SECONDS", "soon"),
        ("DIAL_TIMEOUT_SECONDS", "2"),
        ("ROUTER_BIND", "8082"),
        ("TWILIO_API_BASE_URL", "localhost:8090"),
        ("TWILIO_VOICE_FALLBACK_URL", "twimlets.com/forward"),
        ("TWILIO_AUTH_TOKEN", "token-without-an-account-sid"),
    ],
)
def test_bad_configuration_names_the_variable(
    clean_env: pytest.MonkeyPatch, name: str, value: str | None
) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://router@db:5432/router")
    clean_env.setenv("ADMIN_API_TOKEN", "secret")
    if value is None:
        clean_env.delenv(name)
    else:
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Config.from_env()


def test_main_exits_2_naming_a_missing_variable(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://router@127.0.0.1:5432/router")
    assert main([]) == 2
    assert "ADMIN_API_TOKEN" in capsys.readouterr().err


def test_main_exits_1_when_postgres_is_unreachable_without_leaking_the_password(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    clean_env.setenv("DATABASE_URL", f"postgresql://router:hunter2@127.0.0.1:{port}/router")
    clean_env.setenv("ADMIN_API_TOKEN", "secret")
    assert main([]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}/router" in err
    assert "not reachable" in err
    assert "hunter2" not in err


def test_python_dash_m_services_router_runs_main() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ROUTER_VARIABLES}
    env["SWITCHBOARD_ENV_FILE"] = os.devnull
    result = subprocess.run(
        [sys.executable, "-m", "services.router"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
