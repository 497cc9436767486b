"""Who is calling a management API, and what they may see.

Two kinds of principal send `Authorization: Bearer <token>`: the admin (the
token in ADMIN_API_TOKEN) manages everything; a client API key sees only that
client's objects. `authenticate()` answers with a `Principal`; routes ask
`principal.can_see(client_id)` and answer 404 (never 403) for another
client's object, so ids of other clients do not leak. Client keys are issued
and verified by router, which owns them; other services resolve a key
through router's internal introspection endpoint (see `KeyResolver`), after a
check of its shape that turns away arbitrary tokens without a call.
Comparison of the admin token is constant-time.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import requests
from flask import request

from switchboard.http import ApiError
from switchboard.settings import ConfigError, env_int

# Router issues client keys as "sbk_" and 32 random bytes in URL-safe base64
# (services/router/access.py); anything else is refused without asking router.
_API_KEY = re.compile(r"sbk_[A-Za-z0-9_-]{43}")
DEFAULT_KEY_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    kind: str  # "admin" or "client"
    client_id: str | None = None
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    @property
    def name(self) -> str:
        """How the audit log names this principal."""
        return "admin" if self.is_admin else f"client:{self.client_id}:key:{self.key_id}"

    def can_see(self, client_id: str | None) -> bool:
        return self.is_admin or (client_id is not None and client_id == self.client_id)

    def scope(self, requested_client_id: str | None) -> str | None:
        """The client filter a query must use: a client key is pinned to its own client."""
        if self.is_admin:
            return requested_client_id
        if requested_client_id not in (None, "", self.client_id):
            raise ApiError(404, "not_found", "no such client")
        return self.client_id


ClientKeyLookup = Callable[[str], Principal | None]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(admin_token: str, client_keys: ClientKeyLookup | None = None) -> Principal:
    """The caller's principal; 401 without a token, 403 with one nobody issued."""
    token = bearer_token()
    if token is None:
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer <token>")
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("admin")
    if client_keys is not None:
        principal = client_keys(token)
        if principal is not None:
            return principal
    raise ApiError(403, "forbidden", "token not accepted")


def require_admin(admin_token: str) -> Principal:
    """Raise 401 without a token and 403 with any token but the admin's."""
    principal = authenticate(admin_token)
    return principal


class KeyResolver:
    """Resolves client API keys through router's introspection, with a short, bounded cache.

    Router answers POST {router}/internal/keys/introspect {"key"} with
    {"clientId", "keyId"} (200) or 404. Answers are cached for `ttl` seconds,
    so a revoked key stops working within that time. The cache keeps at most
    `max_entries` answers, least recently used out first, so a flood of made-up
    keys cannot grow it without end; a token that cannot be a key at all never
    reaches router nor the cache.
    """

    def __init__(
        self,
        router_url: str,
        ttl: float = 30.0,
        timeout: float = 2.0,
        max_entries: int | None = None,
    ) -> None:
        self.url = router_url.rstrip("/") + "/internal/keys/introspect"
        self.ttl = ttl
        self.timeout = timeout
        self.max_entries = key_cache_size() if max_entries is None else max_entries
        if self.max_entries < 1:
            raise ConfigError(f"API_KEY_CACHE_SIZE must be at least 1, got {self.max_entries}")
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def __call__(self, token: str) -> Principal | None:
        if not could_be_api_key(token):
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None and now - hit[0] < self.ttl:
                self._cache.move_to_end(token)
                return hit[1]
        try:
            reply = requests.post(self.url, json={"key": token}, timeout=self.timeout)
        except requests.RequestException:
            raise ApiError(503, "unavailable", "cannot verify API keys right now") from None
        if reply.status_code == 200:
            body = reply.json()
            principal: Principal | None = Principal("client", body["clientId"], body.get("keyId"))
        elif reply.status_code == 404:
            principal = None
        else:
            raise ApiError(503, "unavailable", "cannot verify API keys right now")
        with self._lock:
            self._cache[token] = (now, principal)
            self._cache.move_to_end(token)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return principal


def could_be_api_key(token: str) -> bool:
    """True when `token` has the shape of a key router issues (`sbk_` + 43 base64url)."""
    return _API_KEY.fullmatch(token) is not None


def key_cache_size() -> int:
    """API_KEY_CACHE_SIZE: how many resolved keys each service keeps (default 10,000)."""
    return env_int("API_KEY_CACHE_SIZE", DEFAULT_KEY_CACHE_SIZE)
