"""Client API keys: malformed tokens never reach router, and the key cache stays bounded.

A real HTTP listener stands in for router's POST /internal/keys/introspect and
records every key it is asked about.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services.router.access import issue_key
from switchboard.auth import KeyResolver, Principal, authenticate, could_be_api_key
from switchboard.http import install_error_handlers
from switchboard.settings import ConfigError
from tests.support import api_key, free_port

ADMIN = "kernel-admin-token"


class Introspection:
    """Knows the keys in `keys`; `asked` lists every key it was asked about."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.asked: list[str] = []
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._server = make_server("127.0.0.1", port, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        key = str((Request(environ).get_json(silent=True) or {}).get("key"))
        self.asked.append(key)
        client = self.keys.get(key)
        if client is None:
            response = Response("{}", 404, mimetype="application/json")
        else:
            body = json.dumps({"clientId": client, "keyId": "k-" + client})
            response = Response(body, mimetype="application/json")
        return response(environ, start_response)

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def router() -> Iterator[Introspection]:
    server = Introspection()
    yield server
    server.close()


MALFORMED = [
    "test-admin-token",
    "sbk_",
    "sbk_short",
    "sbk_" + "a" * 42,
    "sbk_" + "a" * 44,
    "sbk_" + "a" * 42 + "!",
    "sbk_" + "é" * 43,
    "SBK_" + "a" * 43,
    "x" * 10_000,
]


@pytest.mark.parametrize("token", MALFORMED)
def test_a_token_that_cannot_be_a_key_is_refused_with_403_without_asking_router(
    router: Introspection, token: str
) -> None:
    resolver = KeyResolver(router.url, ttl=0)
    app = Flask(__name__)
    install_error_handlers(app)

    @app.get("/whoami")
    def whoami() -> Response:
        return jsonify({"kind": authenticate(ADMIN, resolver).kind})

    reply = app.test_client().get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 403
    assert reply.get_json()["error"]["code"] == "forbidden"
    assert router.asked == []
    assert len(resolver) == 0


def test_keys_router_issues_have_the_shape_and_are_resolved(router: Introspection) -> None:
    issued = issue_key().key
    assert could_be_api_key(issued)
    router.keys[issued] = "acme"
    resolver = KeyResolver(router.url)
    assert resolver(issued) == Principal("client", "acme", "k-acme")
    assert resolver(issued) == Principal("client", "acme", "k-acme")  # from the cache
    assert router.asked == [issued]


def test_the_key_cache_never_exceeds_its_bound_and_drops_the_least_recently_used(
    router: Introspection,
) -> None:
    resolver = KeyResolver(router.url, max_entries=3)
    first, second, third, fourth = (api_key(f"k{i}") for i in range(4))
    router.keys[first] = "acme"
    for key in (first, second, third):
        resolver(key)
    assert resolver(first) == Principal("client", "acme", "k-acme")  # a hit: now most recent
    resolver(fourth)  # evicts `second`, the least recently used
    assert len(resolver) == 3
    router.asked.clear()
    resolver(first)
    resolver(third)
    assert router.asked == []
    resolver(second)
    assert router.asked == [second]

    for i in range(50):  # a flood of made-up, well-formed keys
        resolver(api_key(f"flood{i}"))
        assert len(resolver) <= 3


def test_cache_size_comes_from_api_key_cache_size(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KeyResolver("http://127.0.0.1:1").max_entries == 10_000
    monkeypatch.setenv("API_KEY_CACHE_SIZE", "5")
    assert KeyResolver("http://127.0.0.1:1").max_entries == 5
    monkeypatch.setenv("API_KEY_CACHE_SIZE", "0")
    with pytest.raises(ConfigError, match="API_KEY_CACHE_SIZE"):
        KeyResolver("http://127.0.0.1:1")
