"""Where Twilio sends a number's calls, and where it turns when we do not answer (pure).

Every number the business holds calls this deployment: its Voice URL is the
public webhook and its status callback the public status path. Its Voice
Fallback URL is what Twilio requests when this deployment does not answer
(down, unreachable, an error, invalid TwiML): for an assigned number,
Twilio's own Forward twimlet dialing the phone the number forwards to, so
callers still reach the client when the whole deployment is down; for a
number in the pool, the pool's fallback (by default Twilio's Message twimlet
saying the number is not in service, as this deployment would). Twimlets are
hosted by Twilio and need no server of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from services.router.twilio_api import NumberWebhooks

TWIMLETS = "https://twimlets.com"
VOICE_PATH = "/api/twilio/webhook"
STATUS_PATH = "/api/twilio/status"
RECORDING_STATUS_PATH = "/api/twilio/recording-status"


def forward_twimlet(phone_number: str) -> str:
    """The Forward twimlet dialing `phone_number` (its `+` encoded as %2B)."""
    return f"{TWIMLETS}/forward?{urlencode({'PhoneNumber': phone_number})}"


def message_twimlet(message: str) -> str:
    """The Message twimlet saying `message`."""
    return f"{TWIMLETS}/message?{urlencode({'Message[0]': message})}"


@dataclass(frozen=True)
class Deployment:
    """This deployment as Twilio sees it: its public base URL and the pool's fallback."""

    public_base_url: str
    pooled_fallback_url: str
    main_number: str | None = None

    def url(self, path: str) -> str:
        return self.public_base_url.rstrip("/") + path

    def webhooks_for(self, forward_to: str | None) -> NumberWebhooks:
        """A number's configuration: forwarding to `forward_to`, or in the pool (None)."""
        return NumberWebhooks(
            voice_url=self.url(VOICE_PATH),
            status_callback=self.url(STATUS_PATH),
            voice_fallback_url=(
                forward_twimlet(forward_to) if forward_to else self.pooled_fallback_url
            ),
        )

    @property
    def pooled(self) -> NumberWebhooks:
        return self.webhooks_for(None)
