"""The nginx edge routes every public path to the service that owns it.

The edge runs from deploy/nginx/switchboard.conf.template, as in `make run`,
in front of three tiny HTTP servers that answer with their own name and the
request they saw.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from switchboard.devstack import nginx
from tests.support import free_port


class _Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        payload = {
            "upstream": self.server.upstream_name,  # type: ignore[attr-defined]
            "method": self.command,
            "path": self.path,
            "body": body,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def _upstream(name: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Echo)
    server.upstream_name = name  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    servers = {name: _upstream(name) for name in nginx.UPSTREAMS}
    upstreams = {name: f"127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    prefix: Path = tmp_path_factory.mktemp("edge")
    running = nginx.start_nginx(prefix, f"127.0.0.1:{free_port()}", upstreams)
    try:
        yield running.url
    finally:
        running.stop()
        for server in servers.values():
            server.shutdown()
            server.server_close()


ROUTES = [
    ("POST", "/api/twilio/webhook", "ingress"),
    ("POST", "/api/twilio/status", "ingress"),
    ("POST", "/api/twilio/dial-status", "ingress"),
    ("POST", "/api/twilio/recording-status", "ingress"),
    ("POST", "/api/twilio/twiml", "router"),
    ("POST", "/api/twilio/purchase-number", "router"),
    ("POST", "/api/twilio/make-call", "router"),
    ("GET", "/api/twilio/recording/CA0123", "recordings"),
    ("GET", "/api/recordings/media/RE0123", "recordings"),
    ("DELETE", "/api/clients/c1/recordings/RE0123", "recordings"),
    ("POST", "/api/clients/c1/recordings/erasure", "recordings"),
    ("GET", "/api/clients/c1", "router"),
    ("GET", "/api/clients", "router"),
    ("POST", "/api/clients/c1/numbers", "router"),
    ("GET", "/api/audit", "router"),
    ("GET", "/api/openapi.json", "router"),
    ("GET", "/api/calls", "analytics"),
    ("GET", "/api/calls/CA0123", "analytics"),
    ("GET", "/api/analytics", "analytics"),
    ("GET", "/api/analytics/summary", "analytics"),
]


@pytest.mark.parametrize(("method", "path", "owner"), ROUTES)
def test_public_path_reaches_its_owner(edge: str, method: str, path: str, owner: str) -> None:
    response = requests.request(method, edge + path, timeout=5)
    assert response.status_code == 200
    seen = response.json()
    assert seen["upstream"] == owner
    assert seen["path"] == path


@pytest.mark.parametrize(
    "path",
    ["/internal/route", "/internal/", "/api/clientsx", "/api/callsign", "/", "/api/unknown"],
)
def test_internal_and_unknown_paths_are_not_exposed(edge: str, path: str) -> None:
    for method in ("GET", "POST"):
        response = requests.request(method, edge + path, timeout=5)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_edge_answers_its_own_healthz(edge: str) -> None:
    response = requests.get(edge + "/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_forwarded_headers_carry_the_public_url_as_requested(edge: str) -> None:
    port = edge.rsplit(":", 1)[1]
    response = requests.post(
        edge + "/api/twilio/webhook?b=2&a=1",
        data={"CallSid": "CA1", "From": "+15550001111"},
        timeout=5,
    )
    seen = response.json()
    headers = seen["headers"]
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{port}"
    assert "127.0.0.1" in headers["x-forwarded-for"]
    # The query string and the form body reach the ingress untouched (signatures).
    assert seen["path"] == "/api/twilio/webhook?b=2&a=1"
    assert seen["body"] == "CallSid=CA1&From=%2B15550001111"


def test_request_id_is_generated_when_absent_and_kept_when_given(edge: str) -> None:
    fresh = requests.get(edge + "/api/calls", timeout=5)
    generated = fresh.json()["headers"]["x-request-id"]
    assert len(generated) == 32
    assert fresh.headers["X-Request-Id"] == generated

    given = requests.get(edge + "/api/calls", headers={"X-Request-Id": "req-42"}, timeout=5)
    assert given.json()["headers"]["x-request-id"] == "req-42"
    assert given.headers["X-Request-Id"] == "req-42"


def test_body_over_64k_is_refused_with_json_413(edge: str) -> None:
    response = requests.post(edge + "/api/clients", data=b"x" * (65 * 1024), timeout=5)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_entity_too_large"


def test_unreachable_service_gives_json_503(tmp_path: Path) -> None:
    dead = {name: f"127.0.0.1:{free_port()}" for name in nginx.UPSTREAMS}
    running = nginx.start_nginx(tmp_path / "edge", f"127.0.0.1:{free_port()}", dead)
    try:
        response = requests.post(running.url + "/api/twilio/webhook", timeout=10)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
    finally:
        running.stop()


def test_config_needs_every_upstream() -> None:
    with pytest.raises(ValueError, match="analytics"):
        nginx.render_config("127.0.0.1:8080", {"ingress": "a:1", "router": "b:2"})
