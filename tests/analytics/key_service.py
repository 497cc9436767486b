"""A real HTTP stand-in for router's POST /internal/keys/introspect.

Analytics resolves client API keys through router (switchboard.auth.
KeyResolver). The tests start this tiny server instead, hand out keys on it
and point the service's ROUTER_URL at it, so keys are resolved over HTTP
exactly as they will be against router.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from tests.support import free_port


class KeyService:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys: dict[str, tuple[str, str]] = {}
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", self.port, self._wsgi, threaded=True
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def issue(self, key: str, client_id: str, key_id: str = "key-1") -> str:
        self.keys[key] = (client_id, key_id)
        return key

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        found = None
        if request.method == "POST" and request.path == "/internal/keys/introspect":
            body = request.get_json(silent=True) or {}
            found = self.keys.get(str(body.get("key", "")))
        if found is None:
            response = Response(
                '{"error":{"code":"not_found","message":"no such key"}}',
                status=404,
                mimetype="application/json",
            )
        else:
            response = Response(
                json.dumps({"clientId": found[0], "keyId": found[1]}),
                mimetype="application/json",
            )
        return response(environ, start_response)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)
