"""What Twilio sends for one forwarded call, as ordered, signed webhooks.

A forwarded call is two calls (see shared Twilio facts): the caller's parent
call, answered by Twilio when the TwiML runs, and the child leg <Dial> places
to the client's phone. The functions here produce the form fields Twilio posts
for each callback, in Twilio's field names, so tests drive the system the way
Twilio would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


@dataclass
class Webhook:
    path: str
    params: dict[str, str]


@dataclass
class ForwardedCall:
    to: str
    forward_to: str
    caller: str = "+14155550123"
    call_sid: str = field(default_factory=new_call_sid)
    child_sid: str = field(default_factory=new_call_sid)
    city: str = "SAN FRANCISCO"
    state: str = "CA"
    country: str = "US"

    def incoming(self) -> Webhook:
        geo = {}
        for prefix in ("From", "Caller"):
            geo.update(
                {
                    f"{prefix}City": self.city,
                    f"{prefix}State": self.state,
                    f"{prefix}Zip": "94107",
                    f"{prefix}Country": self.country,
                }
            )
        for prefix in ("To", "Called"):
            geo.update(
                {
                    f"{prefix}City": "OAKLAND",
                    f"{prefix}State": "CA",
                    f"{prefix}Zip": "94612",
                    f"{prefix}Country": "US",
                }
            )
        return Webhook(
            "/api/twilio/webhook",
            {
                "AccountSid": ACCOUNT_SID,
                "ApiVersion": "2010-04-01",
                "CallSid": self.call_sid,
                "CallStatus": "ringing",
                "Direction": "inbound",
                "From": self.caller,
                "To": self.to,
                "Caller": self.caller,
                "Called": self.to,
                "CallToken": "",
                "StirVerstat": "TN-Validation-Passed-A",
                **geo,
            },
        )

    def _child(self, status: str, seq: int, **extra: str) -> Webhook:
        return Webhook(
            "/api/twilio/status",
            {
                "AccountSid": ACCOUNT_SID,
                "ApiVersion": "2010-04-01",
                "CallSid": self.child_sid,
                "ParentCallSid": self.call_sid,
                "CallStatus": status,
                "Direction": "outbound-dial",
                "From": self.caller,
                "To": self.forward_to,
                "SequenceNumber": str(seq),
                "CallbackSource": "call-progress-events",
                **extra,
            },
        )

    def _dial(self, status: str, duration: int, bridged: bool) -> Webhook:
        params = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": self.call_sid,
            "CallStatus": "in-progress",
            "DialCallSid": self.child_sid,
            "DialCallStatus": status,
            "DialBridged": "true" if bridged else "false",
            "Direction": "inbound",
            "From": self.caller,
            "To": self.to,
        }
        if status == "completed":
            params["DialCallDuration"] = str(duration)
        return Webhook("/api/twilio/dial-status", params)

    def _parent_completed(self, duration: int) -> Webhook:
        return Webhook(
            "/api/twilio/status",
            {
                "AccountSid": ACCOUNT_SID,
                "ApiVersion": "2010-04-01",
                "CallSid": self.call_sid,
                "CallStatus": "completed",
                "CallDuration": str(duration),
                "Duration": "1",
                "Direction": "inbound",
                "From": self.caller,
                "To": self.to,
                "CallbackSource": "call-progress-events",
                "SequenceNumber": "0",
            },
        )

    def answered(self, talk_seconds: int = 42, ring_seconds: int = 9) -> list[Webhook]:
        """Callbacks after the TwiML for a call the client picked up."""
        return [
            self._child("initiated", 0),
            self._child("ringing", 1),
            self._child("in-progress", 2),
            self._child("completed", 3, CallDuration=str(talk_seconds)),
            self._dial("completed", talk_seconds, bridged=True),
            Webhook(
                "/api/twilio/recording-status",
                {
                    "AccountSid": ACCOUNT_SID,
                    "CallSid": self.call_sid,
                    "RecordingSid": "RE" + secrets.token_hex(16),
                    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
                    f"/Recordings/RE{self.call_sid[2:]}",
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(talk_seconds),
                    "RecordingChannels": "2",
                    "RecordingSource": "DialVerb",
                    "RecordingStartTime": "Wed, 25 Nov 2026 14:00:00 +0000",
                    "ErrorCode": "0",
                },
            ),
            self._parent_completed(talk_seconds + ring_seconds + 2),
        ]

    def unanswered(self, ring_seconds: int = 20) -> list[Webhook]:
        """Callbacks for a call the client never picked up (the parent still completes)."""
        return [
            self._child("initiated", 0),
            self._child("ringing", 1),
            self._child("no-answer", 2, CallDuration="0"),
            self._dial("no-answer", 0, bridged=False),
            self._parent_completed(ring_seconds + 3),
        ]
