"""Pointing the official twilio library somewhere else than Twilio's hosts.

`twilio.rest.Client(sid, token, http_client=RedirectingHttpClient(base_url))`
sends every request to `base_url` (the project's Twilio simulator, when
TWILIO_API_BASE_URL is set) while keeping Twilio's paths, query strings,
bodies and basic auth: the documented way to change where the library sends
requests (its own tests use a custom http_client). With no base URL it is the
library's own client, unchanged. `twilio_client` builds the
`twilio.rest.Client` a service uses, so each does it the same way.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base = None
        if base_url:
            parts = urlsplit(base_url.rstrip("/"))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
            self._base = parts

    def rewrite(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(
            (
                self._base.scheme,
                self._base.netloc,
                self._base.path + parts.path,
                parts.query,
                parts.fragment,
            )
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


def twilio_client(
    account_sid: str, auth_token: str, api_base_url: str | None = None, timeout: float = 10.0
) -> Client:
    """The official REST client, sending to `api_base_url` when given (else to Twilio)."""
    client = Client(
        account_sid, auth_token, http_client=RedirectingHttpClient(api_base_url, timeout=timeout)
    )
    # twilio-python logs each request with its headers at INFO: noise in a service log.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    return client
