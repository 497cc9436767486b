"""promtool, Prometheus' own checker, which the tests run over every service's /metrics.

Installed from Debian's `prometheus` package when the machine lacks it, as
PostgreSQL and nginx are (devstack/packages.py): a test that checks the
exposition format must find the real checker on a fresh machine.
"""

from __future__ import annotations

import subprocess

from devstack.packages import ensure_binary


def ensure_promtool() -> str:
    """The promtool binary, installed with apt-get (package prometheus) when missing."""
    return ensure_binary("promtool", "prometheus")


def check_metrics(exposition: str, promtool: str | None = None) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` over one /metrics body (stdin); its exit code and findings."""
    return subprocess.run(
        [promtool or ensure_promtool(), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=30,
    )
