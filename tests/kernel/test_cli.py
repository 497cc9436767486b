"""The console script explains itself: every command listed, and `--help` starts nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from switchboard.cli import COMMANDS


def switchboard(*args: str) -> subprocess.CompletedProcess[str]:
    # Production with nothing configured: a command that tried to start would
    # exit 2 naming a setting instead of printing its usage.
    env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_ENV"}
    env["SWITCHBOARD_ENV"] = "production"
    env["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:9"
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_help_lists_every_command_with_one_line_each() -> None:
    result = switchboard("--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for name in COMMANDS:
        listed = [line for line in lines if line.split()[:1] == [name]]
        assert len(listed) == 1, f"{name} is not listed once in:\n{result.stdout}"
        assert len(listed[0].split()) > 2, f"{name} has no description"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_help_prints_its_options_and_starts_nothing(name: str) -> None:
    result = switchboard(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: switchboard {name}"), result.stdout
    assert "configuration error" not in result.stderr
    assert "not reachable" not in result.stderr


def test_an_unknown_command_is_refused_with_the_usage() -> None:
    result = switchboard("nonsense")
    assert result.returncode == 2
    assert "unknown command 'nonsense'" in result.stderr
    assert "commands:" in result.stderr
