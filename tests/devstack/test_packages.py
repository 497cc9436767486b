"""devstack.packages.ensure_binary: a tool the machine has is found, not installed again."""

from __future__ import annotations

import shutil

import pytest

from devstack import packages


def test_a_binary_on_the_path_is_found_without_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_apt(*alternatives: str) -> str:
        raise AssertionError(f"apt-get asked for {alternatives} although sh is there")

    monkeypatch.setattr(packages, "apt_install", no_apt)
    assert packages.ensure_binary("sh", "dash") == shutil.which("sh")
