"""Small real HTTP servers that stand in for parts not built yet or hard to misbehave on cue.

`KeyIntrospection` answers router's POST /internal/keys/introspect the way
router will once client API keys exist (the numbers issue): {"key"} ->
{"clientId", "keyId"} or 404. `SlowMedia` serves one recording's media at
Twilio's path, slowly on its first request, so a test can kill a worker in
the middle of a download; it also accepts Twilio's DELETE of the recording.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from tests.support import free_port


class _Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", self.port, self._wsgi, threaded=True
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)


class KeyIntrospection(_Server):
    """Router's key introspection endpoint, with keys a test hands out."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, tuple[str, str]] = {}
        self.requests = 0

    def issue(self, key: str, client_id: str, key_id: str) -> str:
        self.keys[key] = (client_id, key_id)
        return key

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/internal/keys/introspect":
            return Response("not found", status=404)
        self.requests += 1
        body = request.get_json(silent=True) or {}
        found = self.keys.get(str(body.get("key", "")))
        if found is None:
            return Response(
                '{"error":{"code":"not_found","message":"no such key"}}',
                status=404,
                mimetype="application/json",
            )
        import json

        return Response(
            json.dumps({"clientId": found[0], "keyId": found[1]}), mimetype="application/json"
        )


class SlowMedia(_Server):
    """Twilio's media and delete paths for recordings whose bytes the test provides.

    The first GET of each recording sends `stall_after` bytes, sets `started`
    and then stalls for `stall_seconds` before sending the rest; later GETs
    are served at once.
    """

    def __init__(
        self, media: dict[str, bytes], stall_after: int = 4096, stall_seconds: float = 60.0
    ) -> None:
        super().__init__()
        self.media = media
        self.stall_after = stall_after
        self.stall_seconds = stall_seconds
        self.started = threading.Event()
        self.gets: dict[str, int] = {}
        self.deleted: list[str] = []
        self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def handle(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        sid, _, ext = name.partition(".")
        if sid not in self.media:
            return Response(
                '{"code":20404,"message":"not found","status":404}',
                status=404,
                mimetype="application/json",
            )
        if request.method == "DELETE":
            self.deleted.append(sid)
            return Response(status=204)
        body = self.media[sid]
        count = self.gets.get(sid, 0) + 1
        self.gets[sid] = count
        if count > 1:
            return Response(body, mimetype="audio/x-wav")

        def slowly() -> Iterator[bytes]:
            yield body[: self.stall_after]
            self.started.set()
            self._release.wait(self.stall_seconds)
            time.sleep(0.01)
            yield body[self.stall_after :]

        return Response(
            slowly(),
            mimetype="audio/x-wav",
            headers={"Content-Length": str(len(body))},
            direct_passthrough=True,
        )


class FlakyMedia(_Server):
    """Twilio's media path answering each recording's GETs from a script of statuses.

    `script[sid]` lists the HTTP statuses of the first GETs; once used up, the
    recording's bytes are served. Every GET is counted in `gets`.
    """

    def __init__(self, media: dict[str, bytes], script: dict[str, list[int]]) -> None:
        super().__init__()
        self.media = media
        self.script = {sid: list(statuses) for sid, statuses in script.items()}
        self.gets: dict[str, int] = {}

    def handle(self, request: Request) -> Response:
        sid = request.path.rsplit("/", 1)[-1].partition(".")[0]
        self.gets[sid] = self.gets.get(sid, 0) + 1
        if request.method == "DELETE":
            return Response(status=204)
        statuses = self.script.get(sid, [])
        if statuses:
            status = statuses.pop(0)
            return Response(
                '{"code":20500,"message":"scripted failure"}',
                status=status,
                mimetype="application/json",
            )
        if sid not in self.media:
            return Response(
                '{"code":20404,"message":"not found","status":404}',
                status=404,
                mimetype="application/json",
            )
        return Response(self.media[sid], mimetype="audio/x-wav")


class Listener(_Server):
    """Any HTTP server a forged or redirected request might reach; it notes every request.

    With `redirect_to`, every GET is answered 302 to that URL plus the request's
    path; otherwise GETs get `body` (404 when there is none).
    """

    def __init__(self, body: bytes | None = None, redirect_to: str | None = None) -> None:
        super().__init__()
        self.body = body
        self.redirect_to = redirect_to
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def handle(self, request: Request) -> Response:
        self.seen.append((request.method, request.full_path, dict(request.headers)))
        if self.redirect_to is not None:
            return Response(status=302, headers={"Location": self.redirect_to + request.path})
        if self.body is None:
            return Response("not found", status=404)
        return Response(self.body, mimetype="audio/x-wav")
