"""What an alert says on each channel, and the webhook's signature (pure).

The email and the SMS name the client, the number called, the caller, the
time in the client's zone, the outcome and the voicemail's link; the
webhook's body is the alert event itself as JSON. A webhook is signed as
`Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
under the client's secret, so a receiver checks both the body and its age.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

from services.reporting.alerts import MissedCall, zone

SIGNATURE_HEADER = "Switchboard-Signature"
DELIVERY_HEADER = "Switchboard-Delivery-Id"
_OUTCOMES = {
    "no-answer": "no answer",
    "busy": "busy",
    "failed": "failed",
    "canceled": "caller hung up",
    "voicemail": "voicemail left",
}


def local_time(call: MissedCall) -> str:
    """The call's time on the client's wall clock, e.g. `Mon 7 Dec 2026, 14:05 PST`."""
    local = call.called_at.astimezone(zone(call.timezone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M %Z}"


def headline(call: MissedCall) -> str:
    return f"Missed call from {call.caller_number} to {call.called_number}"


def text(call: MissedCall) -> str:
    """The plain-text body of the email."""
    who = call.client_name or call.client_id
    lines = [
        f"{who}: a call was missed.",
        "",
        f"Caller:  {call.caller_number}",
        f"Called:  {call.called_number}",
        f"When:    {local_time(call)} ({call.timezone})",
        f"Outcome: {_OUTCOMES.get(call.outcome, call.outcome)}",
    ]
    if call.campaign:
        lines.append(f"Campaign: {call.campaign}")
    if call.voicemail is not None:
        lines.append(f"Voicemail: {call.voicemail.duration_sec} s")
        if call.voicemail.playback_url:
            lines.append(f"Listen: {call.voicemail.playback_url}")
            if call.voicemail.expires_at:
                lines.append(f"(the link works until {call.voicemail.expires_at})")
    lines += ["", f"Call {call.call_sid}"]
    return "\n".join(lines) + "\n"


def sms(call: MissedCall) -> str:
    """One SMS: short enough to stay a few segments, with the voicemail link when there is one."""
    who = call.client_name or "Missed call"
    body = (
        f"{who}: missed call from {call.caller_number} to {call.called_number} "
        f"at {local_time(call)} ({_OUTCOMES.get(call.outcome, call.outcome)})."
    )
    if call.voicemail is not None and call.voicemail.playback_url:
        body += f" Voicemail: {call.voicemail.playback_url}"
    return body


def email(call: MissedCall, sender: str, recipient: str, key: str) -> EmailMessage:
    """The alert email; its Message-ID comes from the delivery key, the same on every try."""
    message = EmailMessage()
    message["Subject"] = headline(call)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@alerts.switchboard>"
    message["X-Switchboard-Call"] = call.call_sid
    message.set_content(text(call))
    return message


@dataclass(frozen=True)
class Signature:
    timestamp: int
    digest: str

    def header(self) -> str:
        return f"t={self.timestamp},v1={self.digest}"


def sign(secret: str, body: bytes, moment: datetime) -> Signature:
    timestamp = int(moment.timestamp())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return Signature(timestamp, mac.hexdigest())


def verify(secret: str, body: bytes, header: str, now: datetime, tolerance: int = 300) -> bool:
    """Whether `header` signs `body` under `secret` within `tolerance` seconds of `now`."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    fresh = abs(now.timestamp() - timestamp) <= tolerance
    return fresh and hmac.compare_digest(mac.hexdigest().encode(), given.encode())
