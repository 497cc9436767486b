"""Serving a Flask app under gunicorn, the same way for every service.

`serve()` runs gunicorn in-process (no shell command to assemble), so each
service's `__main__` stays a few lines and SIGTERM/SIGINT stop it cleanly.
The app is built inside the worker, so threads a service starts in its app
factory (a consumer loop, a refresher) live in the process that serves.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]) -> None:
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._factory()


def serve(
    factory: Callable[[], Flask],
    bind: str,
    name: str,
    workers: int = 1,
    threads: int = 8,
    timeout: int = 30,
) -> None:
    """Run `factory()`'s app under gunicorn until SIGTERM or SIGINT."""
    # Workers share their Prometheus metrics through files in this folder
    # (see switchboard.metrics); it must be set before any worker starts.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = tempfile.mkdtemp(prefix=f"switchboard-{name}-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        atexit.register(shutil.rmtree, folder, True)

    def child_exit(server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    _Gunicorn(
        factory,
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": timeout,
            "graceful_timeout": 10,
            "proc_name": f"switchboard-{name}",
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "child_exit": child_exit,
        },
    ).run()
