"""Texts through Twilio's Messages API, and the `sms.sent` event that records one.

`SmsSender.send` is `client.messages.create` of the official twilio library
(pointed at the simulator when TWILIO_API_BASE_URL is set) and sorts
Twilio's answer into what the caller of it must do next: `Sent` (Twilio took
the message), `Refused` (Twilio said no for good: 21610, the recipient
replied STOP to that number, or another 4xx about the message) or
`SendFailed` (no answer, or a server error: worth another try).

`sms_sent` builds the event: on the call-events topic, keyed by the CallSid,
its id derived from the CallSid and the purpose, so republishing it after a
crash is a duplicate every consumer drops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from twilio.base.exceptions import TwilioException, TwilioRestException

from switchboard.events import Event, delivery_id
from switchboard.twilio_http import twilio_client

log = logging.getLogger(__name__)

SOURCE = "reporting"
TEXT_BACK = "missed-call-text-back"
# Twilio: "Attempt to send to unsubscribed recipient" (the recipient replied STOP).
UNSUBSCRIBED = 21610


@dataclass(frozen=True)
class Sent:
    message_sid: str
    status: str | None


@dataclass(frozen=True)
class Refused:
    """Twilio refused this message for good; `code` is Twilio's error code."""

    code: int | None
    reason: str

    @property
    def unsubscribed(self) -> bool:
        return self.code == UNSUBSCRIBED


class SendFailed(Exception):
    """Twilio could not be reached or failed on its side; the send may be tried again."""


class SmsSender:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = twilio_client(account_sid, auth_token, api_base_url, timeout)

    def send(self, to: str, from_: str, body: str) -> Sent | Refused:
        try:
            message = self._client.messages.create(to=to, from_=from_, body=body)
        except TwilioRestException as err:
            if 400 <= err.status < 500 and err.status != 429:
                return Refused(err.code, f"Twilio {err.status} {err.code}: {err.msg}")
            raise SendFailed(f"Twilio answered {err.status} ({err.code}): {err.msg}") from err
        except (TwilioException, OSError) as err:
            raise SendFailed(f"Twilio could not be reached: {err}") from err
        return Sent(str(message.sid), message.status)


def sms_sent(
    call_sid: str,
    client_id: str | None,
    message_sid: str,
    to: str,
    from_: str,
    body: str,
    status: str | None,
    sent_at: datetime,
) -> Event:
    """The text-back of call `call_sid` was accepted by Twilio as `message_sid`."""
    return Event(
        type="sms.sent",
        source=SOURCE,
        id=delivery_id("sms.sent", {"CallSid": call_sid, "Purpose": TEXT_BACK}),
        callSid=call_sid,
        clientId=client_id,
        data={
            "callSid": call_sid,
            "clientId": client_id,
            "purpose": TEXT_BACK,
            "messageSid": message_sid,
            "to": to,
            "from": from_,
            "body": body,
            "status": status,
            "sentAt": iso_utc(sent_at),
        },
    )


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
