"""SMS as Twilio plays it: the Messages API, replies from phones, opt-outs.

`POST /2010-04-01/Accounts/<sid>/Messages.json` sends a text from one of the
account's numbers and answers Twilio's Message resource (sid SM..., status
queued, RFC 2822 dates), or Twilio's error with its code: 21604/21211 (To
missing or not a phone number), 21603/21606 (From missing or not one of the
account's numbers), 21602 (no Body), 21610 (the recipient replied STOP to
that From number). A StatusCallback, when given, gets `sent` then
`delivered`, signed like every request Twilio makes.

`POST /sim/messages/inbound` {"from","to","body"} is a phone replying to one
of the account's numbers: STOP, UNSUBSCRIBE, CANCEL, END or QUIT opt the
sender out of texts from that number, START or UNSTOP opt it back in, as
Twilio's own opt-out handling does. `GET /sim/messages` lists every message
sent and received, oldest first (?to= / ?from= filter).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request
from twilio.request_validator import RequestValidator

from services.twilio_sim.config import Config
from services.twilio_sim.dialplan import API_VERSION, rfc2822
from services.twilio_sim.geography import is_e164
from services.twilio_sim.resources import API, account_uri
from services.twilio_sim.rest import TwilioError, valid_url
from services.twilio_sim.state import SimState, new_sid
from switchboard.http import ApiError, json_object

log = logging.getLogger(__name__)

ACCOUNT = f"{API}/Accounts/<account_sid>"
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "UNSTOP"})
MAX_BODY_CHARS = 1600
# GSM-7 fits 160 characters in one segment, 153 per segment once split.
SEGMENT_CHARS, SPLIT_SEGMENT_CHARS = 160, 153


@dataclass
class Message:
    sid: str
    from_: str
    to: str
    body: str
    direction: str
    status: str
    created_at: datetime
    status_callback: str | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)


class Messages:
    """Every text sent and received, and who opted out of which number (in memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        # (phone that replied STOP, the account's number it replied to)
        self._opted_out: set[tuple[str, str]] = set()

    def add(self, message: Message) -> None:
        with self._lock:
            self._messages.append(message)

    def update(self, sid: str, **changes: Any) -> None:
        with self._lock:
            for message in self._messages:
                if message.sid == sid:
                    for name, value in changes.items():
                        setattr(message, name, value)

    def log_callback(self, sid: str, entry: dict[str, Any]) -> None:
        with self._lock:
            for message in self._messages:
                if message.sid == sid:
                    message.callbacks.append(entry)

    def all(self) -> list[Message]:
        with self._lock:
            return [replace(m, callbacks=list(m.callbacks)) for m in self._messages]

    def opted_out(self, phone: str, number: str) -> bool:
        with self._lock:
            return (phone, number) in self._opted_out

    def set_opt_out(self, phone: str, number: str, out: bool) -> None:
        with self._lock:
            if out:
                self._opted_out.add((phone, number))
            else:
                self._opted_out.discard((phone, number))


def keyword(body: str) -> str:
    """The reply's opt-out keyword form: Twilio matches the whole body, any case."""
    return body.strip().upper()


def segments(body: str) -> int:
    if len(body) <= SEGMENT_CHARS:
        return 1
    return math.ceil(len(body) / SPLIT_SEGMENT_CHARS)


def message_json(message: Message, account_sid: str) -> dict[str, Any]:
    uri = f"{account_uri(account_sid)}/Messages/{message.sid}"
    created = rfc2822(message.created_at)
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": created,
        "date_sent": created if message.status in ("sent", "delivered", "received") else None,
        "date_updated": created,
        "direction": message.direction,
        "error_code": None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(segments(message.body)),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def _deliver(config: Config, messages: Messages, message: Message) -> None:
    """Report `sent` then `delivered` to the message's StatusCallback, signed as Twilio does."""
    validator = RequestValidator(config.auth_token)
    url = message.status_callback
    with requests.Session() as session:
        for status in ("sent", "delivered"):
            messages.update(message.sid, status=status)
            if not url:
                continue
            params = {
                "AccountSid": config.account_sid,
                "ApiVersion": API_VERSION,
                "MessageSid": message.sid,
                "SmsSid": message.sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "From": message.from_,
                "To": message.to,
            }
            headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
            entry: dict[str, Any] = {"url": url, "params": params}
            try:
                reply = session.post(
                    url, data=params, headers=headers, timeout=config.webhook_timeout
                )
                entry["status"] = reply.status_code
            except requests.RequestException as err:
                entry["error"] = f"request failed: {type(err).__name__}"
                log.info("message status callback %s failed: %s", url, err)
            messages.log_callback(message.sid, entry)


def messaging_routes(config: Config, state: SimState, messages: Messages) -> Blueprint:
    routes = Blueprint("twilio_messaging", __name__)

    @routes.post(f"{ACCOUNT}/Messages.json")
    def send_message(account_sid: str) -> tuple[Response, int]:
        to = request.form.get("To", "").strip()
        from_ = request.form.get("From", "").strip()
        body = request.form.get("Body", "")
        callback = request.form.get("StatusCallback") or None
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if not is_e164(to):
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not from_:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if not is_e164(from_):
            raise TwilioError(400, 21212, f"Invalid From Number (caller ID): {from_}")
        if state.number_by_phone(from_) is None:
            raise TwilioError(
                400,
                21606,
                f"The From phone number {from_} is not a valid, SMS-capable inbound phone "
                "number or short code for your account.",
            )
        if not body.strip():
            raise TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            raise TwilioError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if callback is not None and not valid_url(callback):
            raise TwilioError(400, 21609, f"Invalid StatusCallback URL: {callback}")
        if messages.opted_out(to, from_):
            raise TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
        message = Message(
            sid=new_sid("SM"),
            from_=from_,
            to=to,
            body=body,
            direction="outbound-api",
            status="queued",
            created_at=state.clock.now(),
            status_callback=callback,
        )
        messages.add(message)
        answer = message_json(message, config.account_sid)
        threading.Thread(
            target=_deliver,
            args=(config, messages, message),
            name=f"sms-{message.sid}",
            daemon=True,
        ).start()
        return jsonify(answer), 201

    @routes.post("/sim/messages/inbound")
    def receive_message() -> tuple[Response, int]:
        body = json_object(required=("from", "to", "body"))
        phone, number, text = body["from"], body["to"], body["body"]
        for name, value in (("from", phone), ("to", number)):
            if not isinstance(value, str) or not is_e164(value):
                raise ApiError(400, "invalid_field", f"{name} must be an E.164 number")
        if not isinstance(text, str) or len(text) > MAX_BODY_CHARS:
            raise ApiError(400, "invalid_field", "body must be a string of at most 1600 characters")
        if state.number_by_phone(number) is None:
            raise ApiError(404, "unknown_number", f"the simulated account does not own {number}")
        word = keyword(text)
        if word in OPT_OUT:
            messages.set_opt_out(phone, number, True)
        elif word in OPT_IN:
            messages.set_opt_out(phone, number, False)
        message = Message(
            sid=new_sid("SM"),
            from_=phone,
            to=number,
            body=text,
            direction="inbound",
            status="received",
            created_at=state.clock.now(),
        )
        messages.add(message)
        answer = message_json(message, config.account_sid)
        answer["optedOut"] = messages.opted_out(phone, number)
        return jsonify(answer), 201

    @routes.get("/sim/messages")
    def list_messages() -> Response:
        found = messages.all()
        for name, attribute in (("to", "to"), ("from", "from_")):
            wanted = request.args.get(name)
            if wanted:
                found = [m for m in found if getattr(m, attribute) == wanted]
        records = []
        for message in found:
            record = message_json(message, config.account_sid)
            record["statusCallbacks"] = message.callbacks
            records.append(record)
        return jsonify({"messages": records})

    return routes
