"""Outbound calls: the make-call request, and the TwiML URL Twilio fetches (pure).

POST /api/twilio/make-call names a client's number to call from, the number
to call and a message. Twilio then fetches GET /api/twilio/twiml with the
client and the message in the query string and plays what it gets (the
client's recording disclaimer first when the client records). Both ends are
validated here with the same rules, so a URL router builds is always one the
TwiML endpoint accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from services.router.directory import (
    invalid,
    optional_text,
    parse_client_id,
    parse_e164,
    refuse_unknown,
)

TWIML_PATH = "/api/twilio/twiml"
MAX_MESSAGE = 1000


@dataclass(frozen=True)
class MakeCall:
    from_number: str | None  # None: the account's main number
    to_number: str
    client_id: str
    message: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> MakeCall:
        refuse_unknown(body, ("fromNumber", "toNumber", "clientId", "message"))
        missing = [
            name
            for name in ("toNumber", "clientId", "message")
            if body.get(name) in (None, "")
        ]
        if missing:
            raise invalid(", ".join(missing), "is required")
        given = body.get("fromNumber")
        from_number = None if given in (None, "") else parse_e164("fromNumber", given)
        to_number = parse_e164("toNumber", body["toNumber"])
        if from_number == to_number:
            raise invalid("toNumber", "must differ from fromNumber")
        return cls(
            from_number=from_number,
            to_number=to_number,
            client_id=client_id_of(body["clientId"]),
            message=message_of(body["message"]),
        )

    def twiml_url(self, base_url: str) -> str:
        query = urlencode({"clientId": self.client_id, "message": self.message})
        return f"{base_url.rstrip('/')}{TWIML_PATH}?{query}"


@dataclass(frozen=True)
class TwimlRequest:
    client_id: str
    message: str

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> TwimlRequest:
        missing = [name for name in ("clientId", "message") if not args.get(name)]
        if missing:
            raise invalid(", ".join(missing), "is required")
        return cls(client_id_of(args["clientId"]), message_of(args["message"]))


def client_id_of(value: object) -> str:
    client_id = parse_client_id(value) if isinstance(value, str) else None
    if client_id is None:
        raise invalid("clientId", "must be a client id (a UUID)")
    return client_id


def message_of(value: object) -> str:
    message = optional_text("message", value, MAX_MESSAGE)
    if message is None:
        raise invalid("message", "must be a non-empty string")
    return message
