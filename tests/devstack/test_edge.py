"""The nginx edge routes every public path to the service that owns it.

The edge runs from deploy/nginx/switchboard.conf.template, as in `make run`,
in front of three tiny HTTP servers that answer with their own name and the
request they saw.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from devstack import nginx
from switchboard.settings import ConfigError
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


@contextmanager
def echo_edge(prefix: Path) -> Iterator[str]:
    """The edge (its URL) in front of one echoing server per upstream, all stopped after."""
    servers = {name: _upstream(name) for name in nginx.UPSTREAMS}
    upstreams = {name: f"127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    running = nginx.start_nginx(prefix, f"127.0.0.1:{free_port()}", upstreams)
    try:
        yield running.url
    finally:
        running.stop()
        for server in servers.values():
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with echo_edge(tmp_path_factory.mktemp("edge")) as url:
        yield url


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
    ("PUT", "/api/numbers/+14155550100/flow", "router"),
    ("POST", "/api/twilio/flow/answer", "ingress"),
    ("POST", "/api/twilio/flow/voicemail-done", "ingress"),
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
    [
        "/internal/route",
        "/internal/",
        "/internal/flow/after-dial",
        "/api/clientsx",
        "/api/callsign",
        "/",
        "/api/unknown",
    ],
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


WEBHOOKS = [
    "/api/twilio/webhook",
    "/api/twilio/status",
    "/api/twilio/dial-status",
    "/api/twilio/recording-status",
    "/api/twilio/twiml",
]


@pytest.fixture
def limited_edge(tmp_path: Path) -> Iterator[str]:
    """An edge whose limits do not refill during a test (1 a minute) past their bursts."""
    servers = {name: _upstream(name) for name in nginx.UPSTREAMS}
    upstreams = {name: f"127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    limits = nginx.EdgeLimits(api_rate="1r/m", api_burst=3, webhook_rate="1r/m", webhook_burst=20)
    running = nginx.start_nginx(
        tmp_path / "edge", f"127.0.0.1:{free_port()}", upstreams, limits=limits
    )
    try:
        yield running.url
    finally:
        running.stop()
        for server in servers.values():
            server.shutdown()
            server.server_close()


def test_api_requests_over_the_limit_get_a_json_429_while_webhooks_pass_under_theirs(
    limited_edge: str,
) -> None:
    statuses = [requests.get(limited_edge + "/api/calls", timeout=5).status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]  # the rate's one, then the burst of 3

    limited = requests.get(limited_edge + "/api/analytics/summary", timeout=5)
    assert limited.status_code == 429
    assert limited.headers["Content-Type"] == "application/json"
    assert limited.json()["error"]["code"] == "rate_limited"
    assert set(limited.json()["error"]) == {"code", "message"}
    # Management and analytics share one limit per address; so do Twilio's
    # management paths (purchase-number), which are not callbacks.
    assert requests.get(limited_edge + "/api/clients", timeout=5).status_code == 429
    assert requests.post(limited_edge + "/api/twilio/purchase-number", timeout=5).status_code == 429

    # Twilio's callbacks have their own, higher limit: still open.
    for path in WEBHOOKS * 3:
        reply = requests.post(limited_edge + path, data={"CallSid": "CA1"}, timeout=5)
        assert reply.status_code == 200, path
        assert reply.json()["upstream"] in ("ingress", "router")
    # The edge's own health check is never limited.
    assert requests.get(limited_edge + "/healthz", timeout=5).status_code == 200

    # ... until they, too, pass theirs (21 in all: the rate's one and a burst of 20).
    more = [
        requests.post(limited_edge + "/api/twilio/status", timeout=5).status_code for _ in range(8)
    ]
    assert more == [200] * 6 + [429] * 2
    webhook_limited = requests.post(limited_edge + "/api/twilio/webhook", timeout=5)
    assert webhook_limited.status_code == 429
    assert webhook_limited.json()["error"]["code"] == "rate_limited"


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EDGE_API_RATE", "EDGE_API_BURST", "EDGE_WEBHOOK_RATE", "EDGE_WEBHOOK_BURST"):
        monkeypatch.delenv(name, raising=False)
    assert nginx.EdgeLimits.from_env() == nginx.EdgeLimits()
    monkeypatch.setenv("EDGE_API_RATE", "7r/s")
    monkeypatch.setenv("EDGE_API_BURST", "11")
    monkeypatch.setenv("EDGE_WEBHOOK_RATE", "900r/m")
    monkeypatch.setenv("EDGE_WEBHOOK_BURST", "0")
    limits = nginx.EdgeLimits.from_env()
    assert limits == nginx.EdgeLimits("7r/s", 11, "900r/m", 0)
    upstreams = dict.fromkeys(nginx.UPSTREAMS, "a:1")
    text = nginx.render_config("127.0.0.1:8080", upstreams, limits=limits)
    assert "zone=switchboard_api:10m rate=7r/s;" in text
    assert "zone=switchboard_webhooks:10m rate=900r/m;" in text
    assert "limit_req zone=switchboard_api burst=11 nodelay;" in text
    assert "limit_req zone=switchboard_webhooks burst=0 nodelay;" in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EDGE_API_RATE", "20/s"),
        ("EDGE_API_RATE", "0r/s"),
        ("EDGE_WEBHOOK_RATE", "fast"),
        ("EDGE_API_BURST", "-1"),
        ("EDGE_WEBHOOK_BURST", "lots"),
    ],
)
def test_a_malformed_limit_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        nginx.EdgeLimits.from_env()
