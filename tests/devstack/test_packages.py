"""devstack.packages: a tool the machine has is found, not installed again; installs take turns."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import packages


def test_a_binary_on_the_path_is_found_without_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_apt(*alternatives: str) -> str:
        raise AssertionError(f"apt-get asked for {alternatives} although sh is there")

    monkeypatch.setattr(packages, "apt_install", no_apt)
    assert packages.ensure_binary("sh", "dash") == shutil.which("sh")


def test_one_installer_at_a_time_across_processes(tmp_path: Path) -> None:
    lock = tmp_path / "apt.lock"
    try_it = (
        "import fcntl, sys\n"
        "handle = open(sys.argv[1], 'w')\n"
        "try:\n"
        "    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(3)\n"
    )

    def another_process_gets_it() -> bool:
        return subprocess.run([sys.executable, "-c", try_it, str(lock)]).returncode == 0

    with packages.locked(lock):
        assert not another_process_gets_it()
    assert another_process_gets_it()
