"""What tests need besides fixtures: free ports, polling, services as subprocesses.

`ServiceProcess` runs `python -m services.<name>` the way `make run` does,
with its output in a log file, and waits for its /healthz; a start-up failure
raises with the end of that log, so the reason shows in the test report.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from devstack import REPO_ROOT, processes
from devstack.processes import Child

T = TypeVar("T")

free_port = processes.free_port


def api_key(label: str) -> str:
    """A client API key of the shape router issues (`sbk_` + 43 URL-safe characters);
    other shapes are refused before anyone asks router (switchboard.auth)."""
    return "sbk_" + label.ljust(43, "0")[:43]


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Poll `predicate` until it returns something truthy and return it; TimeoutError if not."""
    return processes.wait_until(predicate, timeout=timeout, interval=interval, message=message)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ServiceProcess:
    """`python -m services.<name>` on 127.0.0.1:<port>, started and stopped by a test.

    The bind variable (<NAME>_BIND) is set from `port`; `env` adds to (and
    overrides) this process's environment. Use as a context manager or call
    start()/stop().
    """

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        port: int | None = None,
        log_dir: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        full_env = dict(os.environ)
        full_env.update(
            {
                f"{name.upper()}_BIND": f"127.0.0.1:{self.port}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        full_env.update(env)
        self.env = full_env
        folder = log_dir or Path(os.environ.get("SWITCHBOARD_TEST_LOGS", "/tmp/switchboard-tests"))
        self.log_file = folder / f"{name}-{self.port}.log"
        self._child = Child(
            name,
            [sys.executable, "-m", f"services.{name}"],
            self.log_file,
            env=self.env,
            cwd=REPO_ROOT,
        )

    def start(self) -> ServiceProcess:
        self._child.start()
        deadline = time.monotonic() + self.startup_timeout
        while not healthy(self.url):
            if not self._child.alive():
                code = self._child.returncode
                self._child.stop()
                raise RuntimeError(
                    f"services.{self.name} exited with code {code} during start-up; "
                    f"end of {self.log_file}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self._child.stop()
                raise TimeoutError(
                    f"services.{self.name} did not answer {self.url}/healthz within "
                    f"{self.startup_timeout:.0f}s; end of {self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        return self

    def alive(self) -> bool:
        return self._child.alive()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code."""
        return self._child.stop(timeout)

    def log_tail(self, lines: int = 60) -> str:
        return self._child.tail(lines)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
