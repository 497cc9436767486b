"""`python -m services.analytics`: configuration, dependency checks, and a real start."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.analytics.__main__ import main
from services.analytics.config import Config
from switchboard.kafka import EventProducer, Topics
from switchboard.settings import ConfigError
from tests.analytics import call_scripts as script
from tests.analytics.conftest import ADMIN_TOKEN
from tests.support import ServiceProcess, free_port, wait_until


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """This test's environment; main() reconfigures logging, so that is restored too."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for name in (
        "CLICKHOUSE_URL",
        "CLICKHOUSE_DATABASE",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_TOPIC_PREFIX",
        "ADMIN_API_TOKEN",
        "ANALYTICS_BATCH_SIZE",
        "ANALYTICS_BATCH_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{tmp_path / 'chdb'}")
    monkeypatch.setenv("ADMIN_API_TOKEN", ADMIN_TOKEN)
    yield monkeypatch
    root.handlers[:] = handlers
    root.setLevel(level)


def test_config_reads_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("ANALYTICS_BATCH_SIZE", "50")
    env.setenv("ANALYTICS_BATCH_SECONDS", "1.5")
    env.setenv("KAFKA_TOPIC_PREFIX", "x.")
    config = Config.from_env()
    assert (config.batch_size, config.batch_seconds) == (50, 1.5)
    assert config.topics.call_events == "x.call-events"
    assert (config.group_id, config.bind, config.clickhouse_database) == (
        "analytics",
        "127.0.0.1:8083",
        "switchboard",
    )
    assert config.embedded


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ANALYTICS_BATCH_SIZE", "0"),
        ("ANALYTICS_BATCH_SECONDS", "soon"),
        ("CLICKHOUSE_URL", "chdb://relative/folder"),
        ("CLICKHOUSE_URL", "postgres://db"),
        ("CLICKHOUSE_DATABASE", "drop table"),
    ],
)
def test_bad_setting_names_the_variable(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Config.from_env()


def test_missing_admin_token_exits_2_with_the_reason(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("ADMIN_API_TOKEN")
    assert main([]) == 2
    assert "ADMIN_API_TOKEN" in capsys.readouterr().err


def test_unreachable_kafka_exits_1(env: pytest.MonkeyPatch) -> None:
    env.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    assert main([]) == 1


def test_service_consumes_and_serves_in_one_process(
    tmp_path: Path, kafka_bootstrap: str, topics: Topics
) -> None:
    env = {
        "CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",  # a folder of its own
        "CLICKHOUSE_DATABASE": "analytics_main",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topics.prefix,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
    }
    producer = EventProducer(kafka_bootstrap)
    for event in script.missed_call("CAsubprocess", datetime.now(UTC)):
        producer.publish(topics.call_events, event, key=event.callSid, timeout=10)
    producer.close()

    def fetch(path: str) -> Any:
        request = urllib.request.Request(
            service.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    with ServiceProcess("analytics", env, log_dir=tmp_path) as service:
        assert fetch("/readyz") == {"status": "ready"}
        call = wait_until(
            lambda: next(
                (c for c in fetch("/api/calls")["calls"] if c["status"] != "in-progress"), None
            )
        )
        assert (call["callSid"], call["status"]) == ("CAsubprocess", "no-answer")
        assert service.stop() == 0
