"""A stand-in for the project's webhook edge in simulator tests.

A real HTTP server (werkzeug, threaded, on a free port) that records every
request the simulator makes, checks each X-Twilio-Signature with twilio's
RequestValidator against the URL exactly as requested, answers 403 to a bad
one, and replies with whatever TwiML (or status) a test set for that path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    url: str
    params: dict[str, str]
    signature_valid: bool


class WebhookReceiver:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._replies: dict[str, tuple[int, str]] = {}
        app = Flask(__name__, static_folder=None)
        app.add_url_rule("/<path:path>", "any", self._handle, methods=["GET", "POST"])
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def reply(self, path: str, body: str, status: int = 200) -> None:
        """Answer requests to `path` with `body` (TwiML) and `status` from now on."""
        with self._lock:
            self._replies[path] = (status, body)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def _handle(self, path: str) -> Response:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        url = self.base_url + raw
        params = request.form if request.method == "POST" else {}
        signature = request.headers.get("X-Twilio-Signature", "")
        valid = bool(signature) and self._validator.validate(url, params, signature)
        fields = (
            {k: request.form[k] for k in request.form}
            if request.method == "POST"
            else {k: request.args[k] for k in request.args}
        )
        with self._lock:
            self._received.append(Received(request.method, request.path, url, fields, valid))
            status, body = self._replies.get(request.path, (200, EMPTY_TWIML))
        if not valid:
            return Response("bad signature", status=403)
        return Response(body, status=status, mimetype="text/xml")

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
