"""A voicemail's signed playback link, asked of the recordings service (which mints them).

Reporting holds no link secret: it asks recordings' own API
(`GET /api/twilio/recording/<CallSid>` with the admin token) and takes the
`playbackUrl` of the voicemail's recording. The link expires as recordings'
links do (RECORDINGS_LINK_TTL_SECONDS); the alert also names the listing,
which mints a fresh one for anyone allowed to see the call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: str | None


class VoicemailLinks:
    def __init__(self, recordings_url: str, admin_token: str, timeout: float) -> None:
        self.base = recordings_url.rstrip("/")
        self.token = admin_token
        self.timeout = timeout
        self.session = requests.Session()

    def fetch(self, call_sid: str, recording_sid: str) -> Link | None:
        """The voicemail's link, or None when recordings cannot give one now (logged)."""
        try:
            reply = self.session.get(
                f"{self.base}/api/twilio/recording/{call_sid}",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            log.warning("recordings unreachable for the voicemail link of %s: %s", call_sid, err)
            return None
        if reply.status_code != 200:
            log.warning(
                "recordings answered %s for the recordings of %s", reply.status_code, call_sid
            )
            return None
        for recording in reply.json().get("recordings", []):
            if recording.get("recordingSid") == recording_sid and recording.get("playbackUrl"):
                return Link(str(recording["playbackUrl"]), recording.get("expiresAt"))
        return None
