"""ingress's client of router: kept-alive connections, a closed one replaced, clear failures."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from devstack.processes import free_port
from services.ingress.router_client import RouterClient, RouterUnavailable

TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


class OneShotRouter:
    """Answers one request per connection with keep-alive promised, then closes it silently.

    That is what a client sees when router's keep-alive runs out, or router
    restarts, between two calls.
    """

    def __init__(self, status: int = 200, body: bytes = TWIML) -> None:
        self.port = free_port()
        self.status, self.body = status, body
        self.connections = 0
        self.requests: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(body)
                conn.sendall(
                    f"HTTP/1.1 {self.status} X\r\nContent-Type: text/xml\r\n"
                    f"Content-Length: {len(self.body)}\r\nConnection: keep-alive\r\n\r\n".encode()
                    + self.body
                )

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def router() -> Iterator[OneShotRouter]:
    server = OneShotRouter()
    yield server
    server.close()


def test_router_is_told_who_called_which_number(router: OneShotRouter) -> None:
    client = RouterClient(f"http://127.0.0.1:{router.port}", timeout=2)
    webhook = {
        "CallSid": "CA1",
        "AccountSid": "AC1",
        "From": "+12125550199",
        "To": "+14155550100",
        "Direction": "inbound",
        "CallToken": "a-long-token-router-has-no-use-for",
        "FromCity": "NEW YORK",
    }
    assert client.twiml_for(webhook, "req-1") == TWIML.decode()
    assert router.requests == [
        b"CallSid=CA1&AccountSid=AC1&From=%2B12125550199&To=%2B14155550100&Direction=inbound"
    ]


def test_a_connection_router_closed_is_replaced_without_a_fallback(router: OneShotRouter) -> None:
    client = RouterClient(f"http://127.0.0.1:{router.port}", timeout=2)
    for n in range(3):
        assert "<Response>" in client.twiml_for({"CallSid": f"CA{n}", "To": "x"}, f"req-{n}")
    assert len(router.requests) == 3
    assert router.connections == 3


def test_router_down_is_router_unavailable() -> None:
    client = RouterClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(RouterUnavailable, match="unreachable"):
        client.twiml_for({"CallSid": "CA1", "To": "x"}, "req-1")


def test_a_router_error_or_a_non_twiml_answer_is_router_unavailable() -> None:
    for status, body in ((503, b'{"error": {}}'), (200, b"<html>proxy page</html>")):
        server = OneShotRouter(status, body)
        try:
            client = RouterClient(f"http://127.0.0.1:{server.port}", timeout=2)
            with pytest.raises(RouterUnavailable, match=f"answered {status}"):
                client.twiml_for({"CallSid": "CA1", "To": "x"}, "req-1")
        finally:
            server.close()
