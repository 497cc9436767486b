"""The clock router judges business hours by: real time, or a simulated one in development.

Call flows open and close by the client's wall clock, so an end-to-end test
of "after hours" needs a clock it can move. With ROUTER_CLOCK_URL (refused
outside development: config.py) router asks that URL for the time on every
routing decision; it answers like the Twilio simulator's `GET /sim/clock`,
`{"now": "<ISO-8601 time>"}`, so a test moves router's clock and the
simulator's together with one `POST /sim/clock`. When the URL does not
answer in time, router goes on with real time and logs it: a test clock
must never cost a caller the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import requests

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
