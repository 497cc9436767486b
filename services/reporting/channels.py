"""Sending one delivery: email over SMTP, SMS through Twilio, a signed webhook POST.

Each sender answers with what the dispatcher must do next: `Delivered`,
`Retry` (no answer, a server error, a temporary SMTP refusal: worth another
try after a back-off) or `GiveUp` (refused for good: a 4xx from the webhook,
a recipient the SMTP server or Twilio will never take).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import requests

from services.reporting import messages
from services.reporting.sms import Refused, SendFailed, SmsSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    detail: str = ""


@dataclass(frozen=True)
class Retry:
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str


Result = Delivered | Retry | GiveUp


class Mailer:
    """SMTP_URL: smtp://[user:password@]host[:port], smtps:// (TLS) or smtp+starttls://."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (465 if self.scheme == "smtps" else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout

    def describe(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def send(self, message: EmailMessage) -> Result:
        try:
            if self.scheme == "smtps":
                context = ssl.create_default_context()
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.scheme == "smtp+starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            if all(code >= 500 for code in codes):
                return GiveUp(f"SMTP refused the recipient: {err.recipients}")
            return Retry(f"SMTP deferred the recipient: {err.recipients}")
        except smtplib.SMTPResponseException as err:
            if err.smtp_code >= 500:
                return GiveUp(f"SMTP {err.smtp_code}: {err.smtp_error!r}")
            return Retry(f"SMTP {err.smtp_code}: {err.smtp_error!r}")
        except (smtplib.SMTPException, OSError) as err:
            return Retry(f"SMTP server {self.describe()} unavailable: {err}")
        return Delivered(str(message["Message-ID"]))


class Texter:
    """SMS through Twilio's Messages API (services/reporting/sms.py's sender)."""

    def __init__(self, sender: SmsSender) -> None:
        self.sender = sender

    def send(self, to: str, from_: str, body: str) -> Result:
        if not from_:
            return GiveUp("no number to send from (REPORTING_SMS_FROM)")
        try:
            answer = self.sender.send(to, from_, body)
        except SendFailed as err:
            return Retry(str(err))
        if isinstance(answer, Refused):
            return GiveUp(answer.reason)
        return Delivered(answer.message_sid)


class WebhookPoster:
    """POSTs the alert's JSON, signed; 2xx delivered, 5xx/429/no answer retried, other 4xx not."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, url: str, body: bytes, secret: str, delivery_id: str, now: datetime) -> Result:
        signature = messages.sign(secret, body, now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Switchboard-Webhooks/1",
            messages.SIGNATURE_HEADER: signature.header(),
            messages.DELIVERY_HEADER: delivery_id,
        }
        try:
            reply = self.session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as err:
            return Retry(f"no answer from {url}: {type(err).__name__}")
        if 200 <= reply.status_code < 300:
            return Delivered(str(reply.status_code))
        if reply.status_code >= 500 or reply.status_code in (408, 429):
            return Retry(f"{url} answered {reply.status_code}")
        return GiveUp(f"{url} answered {reply.status_code}")
