"""Twilio as this service uses it: fetch a recording's media, delete Twilio's copy.

Everything goes through one `twilio.rest.Client` and its http_client, a
`TwilioHttpClient` subclass with two additions: with TWILIO_API_BASE_URL set
it sends every request to that scheme://host instead (the simulator; paths,
query strings and basic auth stay Twilio's), and it can stream a binary
response, which the library's own `request()` cannot (its Response holds the
body as text). Media downloads use the library's session and the client's
account credentials, as Twilio requires when media auth is enforced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from switchboard.twilio_http import RedirectingHttpClient

log = logging.getLogger(__name__)

API_BASE = "https://api.twilio.com"
CHUNK_BYTES = 64 * 1024


class DownloadError(Exception):
    """A media download did not give a complete file."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class TwilioUnavailable(Exception):
    """Twilio (or the network to it) failed a REST call in a way worth retrying later."""


class RewritingHttpClient(RedirectingHttpClient):
    """The shared redirecting client, plus streaming of binary media bodies."""

    def stream(self, url: str, auth: tuple[str, str], timeout: float) -> requests.Response:
        """GET `url` with the library's session, body not yet read (stream=True)."""
        session = self.session or requests.Session()
        return session.get(
            self.rewrite(url),
            auth=auth,
            timeout=timeout,
            stream=True,
            allow_redirects=True,
            hooks=self.request_hooks,
        )


@dataclass(frozen=True)
class MediaResponse:
    """An open media download: its chunks, and the size the server announced."""

    chunks: Iterator[bytes]
    expected_bytes: int | None
    content_type: str | None


class TwilioRecordings:
    """The few recording operations of Twilio's REST API this service needs."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.account_sid = account_sid
        self.http = RewritingHttpClient(base_url, timeout=timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.timeout = timeout
        self._auth = (account_sid, auth_token)

    def media_url(
        self, recording_sid: str, recording_url: str | None, fmt: str, channels: int
    ) -> str:
        """The media URL of a recording in `fmt`, dual-channel WAV where it was recorded so."""
        base = recording_url or (
            f"{API_BASE}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"
        )
        base = base.split("?", 1)[0]
        for known in (".wav", ".mp3", ".json"):
            base = base.removesuffix(known)
        url = f"{base}.{fmt}"
        if fmt == "wav" and channels == 2:
            # Twilio mixes dual-channel recordings down to mono unless asked.
            url += "?RequestedChannels=2"
        return url

    def open_media(self, url: str) -> MediaResponse:
        """Start downloading; DownloadError (retryable on 5xx, 429 and network failures)."""
        try:
            reply = self.http.stream(url, self._auth, self.timeout)
        except (requests.Timeout, requests.ConnectionError) as err:
            raise DownloadError(f"media request failed: {err}", retryable=True) from err
        if reply.status_code != 200:
            reply.close()
            retryable = reply.status_code >= 500 or reply.status_code == 429
            raise DownloadError(f"media request answered HTTP {reply.status_code}", retryable)
        length = reply.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        return MediaResponse(_chunks(reply), expected, reply.headers.get("Content-Type"))

    def delete(self, recording_sid: str) -> bool:
        """Delete Twilio's copy; True if it is gone now (also when it already was)."""
        try:
            self.client.recordings(recording_sid).delete()
        except TwilioRestException as err:
            if err.status == 404:
                return True
            if err.status >= 500 or err.status == 429:
                raise TwilioUnavailable(f"Twilio answered {err.status}: {err.msg}") from err
            log.error("Twilio refused to delete recording %s: %s", recording_sid, err)
            return False
        except requests.RequestException as err:
            raise TwilioUnavailable(f"Twilio not reachable: {err}") from err
        return True


def _chunks(reply: requests.Response) -> Iterator[bytes]:
    try:
        for chunk in reply.iter_content(CHUNK_BYTES):
            if chunk:
                yield chunk
    except requests.RequestException as err:
        raise DownloadError(f"media transfer broke off: {err}", retryable=True) from err
    finally:
        reply.close()
