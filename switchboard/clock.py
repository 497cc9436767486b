"""The clock call flows judge business hours by: real time, or a simulated one in development.

Call flows open and close by the client's wall clock, so an end-to-end test
of "after hours" needs a clock it can move. With ROUTER_CLOCK_URL (refused
outside development) router, and ingress when it answers from its copy of
the routing in router's stead, ask that URL for the time on every routing
decision; it answers like the Twilio simulator's `GET /sim/clock`,
`{"now": "<ISO-8601 time>"}`, so a test moves their clocks and the
simulator's together with one `POST /sim/clock`. When the URL does not
answer in time, the service goes on with real time and logs it: a test
clock must never cost a caller the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from switchboard import settings
from switchboard.settings import ConfigError, env_str

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Well inside ingress's budget for router's whole answer.
CLOCK_TIMEOUT_SECONDS = 0.3


def real_now() -> datetime:
    return datetime.now(UTC)


class ClockUrl:
    """Reads "now" from a URL answering {"now": "<ISO-8601 time>"}; real time if it cannot."""

    def __init__(self, url: str, timeout: float = CLOCK_TIMEOUT_SECONDS) -> None:
        self._url = url
        self._timeout = timeout

    def __call__(self) -> datetime:
        try:
            reply = requests.get(self._url, timeout=self._timeout)
            reply.raise_for_status()
            moment = datetime.fromisoformat(str(reply.json()["now"]).replace("Z", "+00:00"))
        except (requests.RequestException, ValueError, KeyError, TypeError) as err:
            log.warning("clock %s unreadable, using real time: %s", self._url, err)
            return real_now()
        if moment.tzinfo is None:
            log.warning("clock %s gave a time without a zone, using real time", self._url)
            return real_now()
        return moment


def clock_of(url: str | None) -> Clock:
    return real_now if url is None else ClockUrl(url)


def clock_url_from_env() -> str | None:
    """ROUTER_CLOCK_URL, checked and refused in production; None: real time."""
    url = env_str("ROUTER_CLOCK_URL", "") or None
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"ROUTER_CLOCK_URL must be an http(s) URL, got {url!r}")
    settings.require_in_production(False, "ROUTER_CLOCK_URL is set")
    return url
