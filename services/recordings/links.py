"""Signed, expiring links to a recording's media (pure: strings and times in, strings out).

A link carries the recording, its expiry (Unix seconds), how it is served
(`inline` for playback, `attachment` for download) and the principal that
minted it (for the audit), all covered by an HMAC-SHA256 keyed with the
service's link secret. Anyone holding the link may fetch the media until it
expires, which is what an <audio> element or a download needs; changing any
part of it breaks the signature.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

MEDIA_PATH = "/api/recordings/media/"
DISPOSITIONS = ("inline", "attachment")


class InvalidLink(Exception):
    """A link that was tampered with, malformed or has expired (answered with 403)."""


@dataclass(frozen=True)
class MediaLink:
    recording_sid: str
    expires: int
    disposition: str
    by: str

    def query(self, secret: str) -> dict[str, str]:
        return {
            "exp": str(self.expires),
            "disposition": self.disposition,
            "by": self.by,
            "sig": signature(secret, self),
        }

    def url(self, base_url: str, secret: str) -> str:
        return f"{base_url.rstrip('/')}{MEDIA_PATH}{self.recording_sid}?" + urlencode(
            self.query(secret)
        )


def signature(secret: str, link: MediaLink) -> str:
    # Fields joined by a byte no field may contain, so no two links sign alike.
    message = "\n".join(
        ("v1", link.recording_sid, str(link.expires), link.disposition, link.by)
    ).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def mint(
    secret: str, recording_sid: str, disposition: str, by: str, now: float, ttl: int
) -> MediaLink:
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {DISPOSITIONS}, got {disposition!r}")
    if "\n" in by or "\n" in recording_sid:
        raise ValueError("link fields must not contain newlines")
    return MediaLink(recording_sid, int(now) + ttl, disposition, by)


def verify(secret: str, recording_sid: str, args: dict[str, str], now: float) -> MediaLink:
    """The link the query arguments describe, or InvalidLink saying why not."""
    try:
        expires = int(args["exp"])
        disposition = args["disposition"]
        by = args["by"]
        given = args["sig"]
    except (KeyError, ValueError):
        raise InvalidLink("link is missing exp, disposition, by or sig") from None
    if disposition not in DISPOSITIONS or "\n" in by:
        raise InvalidLink("link is malformed")
    link = MediaLink(recording_sid, expires, disposition, by)
    # Bytes, because compare_digest refuses str with non-ASCII characters
    # and a tampered link may carry any.
    if not hmac.compare_digest(signature(secret, link).encode(), given.encode("utf-8", "replace")):
        raise InvalidLink("link signature does not match")
    if now >= expires:
        raise InvalidLink("link has expired")
    return link
