"""A local HTTP receiver for alert webhooks: records each POST and answers as scripted."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from flask import Flask, Response, request

from tests.local_server import LocalServer


@dataclass(frozen=True)
class Hook:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int


class HookReceiver(LocalServer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Hook] = []
        self._script: dict[str, deque[int]] = {}
        app = Flask(__name__, static_folder=None)
        app.add_url_rule("/<path:path>", "any", self._handle, methods=["POST"])
        super().__init__(app, "hook-receiver")
        self.base_url = self.url

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next POSTs to `path` with these statuses, then 200."""
        with self._lock:
            self._script[path] = deque(statuses)

    def hooks(self, path: str) -> list[Hook]:
        with self._lock:
            return [hook for hook in self._hooks if hook.path == path]

    def _handle(self, path: str) -> Response:
        with self._lock:
            script = self._script.get("/" + path)
            status = script.popleft() if script else 200
            self._hooks.append(Hook("/" + path, request.get_data(), dict(request.headers), status))
        return Response("ok" if status < 300 else "not now", status=status)
