"""What tests need besides fixtures: free ports, polling, services as subprocesses.

`ServiceProcess` runs `python -m services.<name>` the way `make run` does
(devstack.stack.Service), with its output in a log file, and waits for its
/healthz; a start-up failure raises with the end of that log, so the reason
shows in the test report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from devstack import processes
from devstack.stack import Service

free_port = processes.free_port


def api_key(label: str) -> str:
    """A client API key of the shape router issues (`sbk_` + 43 URL-safe characters);
    other shapes are refused before anyone asks router (switchboard.auth)."""
    return "sbk_" + label.ljust(43, "0")[:43]


# The one "until this holds" helper: poll a predicate, return its value, or TimeoutError.
wait_until = processes.wait_until


class ServiceProcess(Service):
    """`python -m services.<name>` on 127.0.0.1:<port>, started and stopped by a test.

    devstack's Service (the one way a service is started and waited for), on
    a free port unless one is given, its log under the session's log folder.
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
        port = port or free_port()
        folder = log_dir or Path(os.environ.get("SWITCHBOARD_TEST_LOGS", "/tmp/switchboard-tests"))
        super().__init__(
            name, env, port, folder, log_file=folder / f"{name}-{port}.log", append_log=False
        )
        self.startup_timeout = startup_timeout

    def start(self, timeout: float | None = None) -> ServiceProcess:
        super().start(self.startup_timeout if timeout is None else timeout)
        return self

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
