"""Twilio as this service uses it: fetch a recording's media, delete Twilio's copy.

Everything goes through one `twilio.rest.Client` and its http_client, a
`TwilioHttpClient` subclass with two additions: with TWILIO_API_BASE_URL set
it sends every request to that scheme://host instead (the simulator; paths,
query strings and basic auth stay Twilio's), and it can stream a binary
response, which the library's own `request()` cannot (its Response holds the
body as text). Media downloads use the library's session and the client's
account credentials, as Twilio requires when media auth is enforced.

A recording's media URL is built from the configured API base, our AccountSid
and the RecordingSid, never taken from the event: a forged event could
otherwise send the account's Basic auth to any host and make the worker a
probe into the private network. `refusal` says why an event's RecordingUrl is
not ours. Redirects are followed by hand and credentials go only to the
configured base's origin (Twilio answers media with a redirect to its storage).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from switchboard.twilio_http import RedirectingHttpClient

log = logging.getLogger(__name__)

API_BASE = "https://api.twilio.com"
CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 5
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class DownloadError(Exception):
    """A media download did not give a complete file."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class TwilioUnavailable(Exception):
    """Twilio (or the network to it) failed a REST call in a way worth retrying later."""


def origin(url: str) -> tuple[str, str, int]:
    """scheme, host and port of a URL (default ports filled in), to compare where URLs go."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


class RewritingHttpClient(RedirectingHttpClient):
    """The shared redirecting client, plus streaming of binary media bodies."""

    def stream(self, url: str, auth: tuple[str, str], timeout: float) -> requests.Response:
        """GET `url` with the library's session, body not yet read (stream=True).

        Redirects are followed here, not by requests, so the credentials go
        with a hop only when it stays on the origin `url` was sent to, and a
        redirect never downgrades https to http.
        """
        session = self.session or requests.Session()
        target = self.rewrite(url)
        home = origin(target)
        for _ in range(MAX_REDIRECTS + 1):
            reply = session.get(
                target,
                auth=auth if origin(target) == home else None,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
                hooks=self.request_hooks,
            )
            if not reply.is_redirect:
                return reply
            location = reply.headers.get("Location", "")
            reply.close()
            following = urljoin(target, location)
            if origin(following)[0] not in ("http", "https") or (
                origin(target)[0] == "https" and origin(following)[0] != "https"
            ):
                raise DownloadError(f"refused a redirect to {following!r}", retryable=False)
            target = following
        raise DownloadError(f"more than {MAX_REDIRECTS} redirects", retryable=False)


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
        self.base_url = (base_url or API_BASE).rstrip("/")
        self.http = RewritingHttpClient(base_url, timeout=timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.timeout = timeout
        self._auth = (account_sid, auth_token)

    def recording_path(self, recording_sid: str) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def refusal(
        self, recording_sid: str, account_sid: str | None, recording_url: str | None
    ) -> str | None:
        """Why a recording event does not name one of this account's recordings, or None.

        The RecordingUrl may point at api.twilio.com or at the configured base
        (the simulator names itself), under this account's recording path.
        """
        if not _RECORDING_SID.match(recording_sid):
            return f"RecordingSid {recording_sid!r} is not a Twilio recording SID"
        if account_sid is not None and account_sid != self.account_sid:
            return f"AccountSid {account_sid!r} is not this service's account"
        if recording_url is None:
            return None
        path = self.recording_path(recording_sid)
        stem = urlsplit(recording_url).path
        for known in (".wav", ".mp3", ".json"):
            stem = stem.removesuffix(known)
        for base in (self.base_url, API_BASE):
            if origin(recording_url) == origin(base) and stem == urlsplit(base).path + path:
                return None
        return f"RecordingUrl {recording_url!r} is not under {self.base_url}{path}"

    def media_url(self, recording_sid: str, fmt: str, channels: int) -> str:
        """The media URL of a recording in `fmt`, dual-channel WAV where it was recorded so.

        Built from our account only (see `refusal`); the http client sends it to
        the configured base.
        """
        url = f"{API_BASE}{self.recording_path(recording_sid)}.{fmt}"
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
