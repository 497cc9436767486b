"""Pointing twilio-python at the simulator: an http_client that rewrites the host.

`twilio.rest.Client(sid, token, http_client=SimulatorHttpClient(base_url))`
sends every request to `base_url` instead of api.twilio.com (or any other
Twilio host), keeping Twilio's paths, query strings, bodies and basic auth.
This is the documented way to change where the library sends requests (its
own tests use a custom http_client). It lives here to prove the simulator
works with the official client; services get the same wiring
through the shared kernel's `switchboard.twilio_http`.
"""

from __future__ import annotations

from switchboard.twilio_http import RedirectingHttpClient


class SimulatorHttpClient(RedirectingHttpClient):
    """A redirecting client whose base URL (the simulator's) is required."""

    def __init__(self, base_url: str, **kwargs: object) -> None:
        if not base_url:
            raise ValueError("base_url must be an http(s) URL, got ''")
        super().__init__(base_url, **kwargs)
