"""A stand-in for the project's webhook edge in simulator tests.

A real HTTP server (werkzeug, threaded, on a free port) that records every
request the simulator makes, checks each X-Twilio-Signature with twilio's
RequestValidator against the URL exactly as requested, answers 403 to a bad
one, and replies with whatever TwiML (or status) a test set for that path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from tests.local_server import LocalServer

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    url: str
    params: dict[str, str]
    signature_valid: bool


class WebhookReceiver(LocalServer):
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._replies: dict[str, tuple[int, str]] = {}
        app = Flask(__name__, static_folder=None)
        app.add_url_rule("/<path:path>", "any", self._handle, methods=["GET", "POST"])
        super().__init__(app, "webhook-receiver")
        self.base_url = self.url

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
