"""Pointing twilio-python at the simulator: an http_client that rewrites the host.

`twilio.rest.Client(sid, token, http_client=SimulatorHttpClient(base_url))`
sends every request to `base_url` instead of api.twilio.com (or any other
Twilio host), keeping Twilio's paths, query strings, bodies and basic auth.
This is the documented way to change where the library sends requests (its
own tests use a custom http_client). It lives here to prove the simulator
works with the official client; services own their own copy of this wiring
when they need it (a service never imports another service).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response


class SimulatorHttpClient(TwilioHttpClient):  # type: ignore[misc]
    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._prefix = parts.path

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
