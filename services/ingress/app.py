"""ingress HTTP app: Twilio's webhooks in, events out, TwiML back.

Every callback goes the same way: check the signature (403, nothing
produced), check the fields (400), make the event durable (Kafka, or the
spool when Kafka cannot take it in time; 503 only when neither can), then
answer. The incoming-call webhook additionally asks router for TwiML and
falls back to a safe apology when router does not answer in time.
"""

from __future__ import annotations

import atexit
import http.client
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from confluent_kafka.admin import AdminClient
from flask import Flask, Response, g, jsonify, request

from services.ingress import twiml
from services.ingress.config import Config
from services.ingress.signatures import SignatureChecker, public_url
from services.ingress.spool import Drainer, Spool, SpooledEvent, SpoolError
from services.ingress.webhooks import WEBHOOKS, MalformedWebhook, fallback_event, to_event
from switchboard import events
from switchboard.auth import authenticate
from switchboard.http import ApiError, install_error_handlers, json_object
from switchboard.kafka import Acknowledgement, EventProducer, PublishError
from switchboard.metrics import counter, install_metrics
from switchboard.privacy import E164, TOKEN_PREFIX

log = logging.getLogger(__name__)

XML = "text/xml; charset=utf-8"


class EventSink:
    """Makes events durable: Kafka first, the spool when Kafka is slow or down."""

    def __init__(self, config: Config) -> None:
        self.topic = config.topics.call_events
        self.timeout = config.publish_timeout
        self.producer = EventProducer(config.kafka_bootstrap)
        self.spool = Spool(config.spool_dir)
        self.drainer = Drainer(self.spool, self.producer)

    def put(self, event: events.Event) -> str:
        """Validate the event, then return where it went ("kafka" or "spool").

        Raises InvalidEvent for an invalid event and SpoolError if it could go nowhere.
        """
        events.validate(event.to_dict())
        return self.send(event).settle()

    def send(self, event: events.Event) -> PendingEvent:
        """Start making a validated event durable; `settle()` the result to finish."""
        ack: Acknowledgement | None = None
        if self.spool.is_empty():  # else Kafka is (or was just) down: keep the order, spool it
            try:
                ack = self.producer.send_raw(self.topic, event.to_json(), event.callSid)
            except PublishError as err:
                _log_spooling(event, err)
        return PendingEvent(self, event, ack, time.monotonic() + self.timeout)

    def spool_event(self, event: events.Event) -> str:
        self.spool.append(SpooledEvent(self.topic, event.callSid, event.to_json()))
        return "spool"

    def close(self) -> None:
        self.drainer.stop()
        self.producer.close(timeout=2.0)


def _log_spooling(event: events.Event, err: PublishError) -> None:
    log.warning(
        "Kafka did not take event in time, spooling: %s",
        err,
        extra={"callSid": event.callSid, "eventId": event.id},
    )


@dataclass
class PendingEvent:
    """An event handed to Kafka (or not: `ack` is None) and not yet known durable."""

    sink: EventSink
    event: events.Event
    ack: Acknowledgement | None
    deadline: float

    def settle(self) -> str:
        """Wait for Kafka up to the deadline, else spool; raise SpoolError if neither holds it.

        A copy that Kafka acknowledges after the deadline is a duplicate by
        event id, which every consumer drops.
        """
        if self.ack is not None:
            try:
                self.ack.wait(max(0.0, self.deadline - time.monotonic()))
                return "kafka"
            except PublishError as err:
                _log_spooling(self.event, err)
        return self.sink.spool_event(self.event)


# What router is told of an incoming call: who called which number, not all
# of Twilio's form (router decides by the called number alone).
UNSIGNED_TEST_ACCOUNT = "AC" + "0" * 32
ROUTING_FIELDS = ("CallSid", "AccountSid", "From", "To", "Direction")


class RouterClient:
    """Asks router for a call's TwiML; each request thread keeps its own connection open.

    http.client on a kept-alive connection costs the request thread a third
    less than a pooled client library. Router closes idle connections (after
    gunicorn's keep-alive), so a request that fails on a reused connection
    before any answer is tried once more on a new one. The timeout bounds
    each connect and each read.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self._connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self.path = parts.path.rstrip("/") + "/internal/route"
        self.timeout = timeout
        self._local = threading.local()

    def twiml_for(self, params: Mapping[str, str], request_id: str) -> str:
        """Router's TwiML for the call these webhook fields describe, or raise RouterUnavailable."""
        form = urlencode({name: params[name] for name in ROUTING_FIELDS if name in params}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Request-Id": request_id}
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        fresh = connection is None
        while True:
            if connection is None:
                connection = self._connect()
            try:
                status, text = self._post(connection, form, headers)
                break
            except (OSError, http.client.HTTPException) as err:
                self._drop(connection)
                if fresh or isinstance(err, TimeoutError):
                    raise RouterUnavailable(f"router unreachable: {type(err).__name__}") from err
                connection, fresh = None, True  # router closed the kept one: once more
        if status != 200 or "<Response" not in text:
            raise RouterUnavailable(f"router answered {status}")
        return text

    def _post(
        self, connection: http.client.HTTPConnection, form: bytes, headers: dict[str, str]
    ) -> tuple[int, str]:
        connection.request("POST", self.path, body=form, headers=headers)
        reply = connection.getresponse()
        text = reply.read().decode("utf-8", "replace")
        if reply.will_close:
            self._drop(connection)
        return reply.status, text

    def _connect(self) -> http.client.HTTPConnection:
        connection = self._connection_class(self._host, self._port, timeout=self.timeout)
        self._local.connection = connection
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None


class RouterUnavailable(Exception):
    pass


def metrics_counter_fallbacks() -> Any:
    return counter("ingress_fallbacks_total", "Calls answered with the fallback TwiML")


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    app = Flask(__name__)
    install_error_handlers(app)
    if not config.validate_signatures:
        log.warning(
            "TWILIO_VALIDATE_SIGNATURES=false: X-Twilio-Signature is NOT checked; "
            "anyone can post fake calls. Use only for local curl tests."
        )
    checker = SignatureChecker(config.auth_token)
    sink = EventSink(config)
    sink.drainer.start()
    atexit.register(sink.close)
    router = RouterClient(config.router_url, config.router_timeout)
    app.extensions["ingress.sink"] = sink
    metrics = install_metrics(app, "ingress")
    metrics.on_scrape(
        lambda: {"ingress_spool_depth": ("Events waiting in the spool", sink.spool.depth())}
    )
    fallbacks = metrics_counter_fallbacks()

    @app.before_request
    def _request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex

    def checked(kind: str) -> tuple[events.Event, dict[str, str]]:
        """The webhook's validated event once signature and fields check out (nothing stored)."""
        hook = WEBHOOKS[kind]
        if request.mimetype != "application/x-www-form-urlencoded":
            raise ApiError(
                415,
                "unsupported_media_type",
                "Twilio webhooks are application/x-www-form-urlencoded",
            )
        url = public_url(request, config.public_base)
        if config.validate_signatures and not checker.is_valid(
            url, request.form, request.headers.get("X-Twilio-Signature")
        ):
            log.warning(
                "rejected %s webhook: bad or missing X-Twilio-Signature for %s",
                kind,
                url,
                extra={"requestId": g.request_id},
            )
            raise ApiError(
                403, "invalid_signature", "X-Twilio-Signature is missing or does not match this URL"
            )
        params = request.form.to_dict()  # the first value of each field, as Twilio sends one
        if not config.validate_signatures and kind == "voice" and not params.get("AccountSid"):
            # The integration guide's own curl test sends no AccountSid; with
            # checks off (development only) it is a local test, not Twilio.
            params["AccountSid"] = config.account_sid or UNSIGNED_TEST_ACCOUNT
        try:
            event = to_event(hook, params, url, g.request_id)
            events.validate(event.to_dict())
        except (MalformedWebhook, events.InvalidEvent) as err:
            raise ApiError(400, "malformed_webhook", str(err)) from None
        return event, params

    def make_durable(pending: PendingEvent) -> None:
        """Kafka or the spool has the event, or the request fails with 503."""
        event = pending.event
        try:
            where = pending.settle()
        except SpoolError as err:
            log.error("event could not be made durable: %s", err, extra={"callSid": event.callSid})
            raise ApiError(503, "unavailable", "cannot store the webhook right now") from None
        metrics.produced(event.type)
        log.info(
            "%s accepted into %s",
            event.type,
            where,
            extra={"callSid": event.callSid, "requestId": g.request_id, "eventId": event.id},
        )

    def accept(kind: str) -> None:
        event, _ = checked(kind)
        make_durable(sink.send(event))

    @app.post("/api/twilio/webhook")
    def incoming_call() -> Response:
        event, params = checked("voice")
        # Ask router while Kafka acknowledges the event: the caller waits for
        # the slower of the two, not for both in turn. The TwiML is only
        # answered once the event is durable.
        pending = sink.send(event)
        failure: str | None = None
        try:
            body = router.twiml_for(params, g.request_id)
        except RouterUnavailable as err:
            body, failure = twiml.fallback(), str(err)
        make_durable(pending)
        if failure is not None:
            log.error(
                "serving fallback TwiML: %s",
                failure,
                extra={"callSid": params["CallSid"], "requestId": g.request_id},
            )
            try:
                sink.put(fallback_event(params, failure, g.request_id))
            except SpoolError:
                log.error(
                    "fallback event lost: spool unavailable", extra={"callSid": params["CallSid"]}
                )
            fallbacks.inc()
        return Response(body, mimetype="text/xml")

    @app.post("/api/twilio/status")
    def call_status() -> Response:
        accept("status")
        return Response(twiml.empty(), mimetype="text/xml")

    @app.post("/api/twilio/dial-status")
    def dial_status() -> Response:
        accept("dial-status")
        return Response(twiml.after_dial(), mimetype="text/xml")

    @app.post("/api/twilio/recording-status")
    def recording_status() -> Response:
        accept("recording-status")
        return Response(twiml.empty(), mimetype="text/xml")

    @app.post("/internal/privacy/spool-erasure")
    def erase_from_spool() -> Response:
        """Router's erasure of a caller: the number replaced by its token in spooled events."""
        if not config.admin_token:
            raise ApiError(404, "not_found", "spool erasure needs ADMIN_API_TOKEN to be set")
        authenticate(config.admin_token)
        body = json_object(required=("number", "token"))
        number, token = body["number"], body["token"]
        if not isinstance(number, str) or not E164.match(number):
            raise ApiError(400, "invalid_field", "number must be an E.164 phone number")
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or number in token:
            raise ApiError(400, "invalid_field", f"token must start with {TOKEN_PREFIX!r}")
        return jsonify({"rewritten": sink.spool.scrub(number, token)})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "spoolDepth": sink.spool.depth()})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        problems = []
        try:
            AdminClient({"bootstrap.servers": config.kafka_bootstrap}).list_topics(timeout=2)
        except Exception as err:  # any failure means not ready
            problems.append(f"kafka: {err}")
        status = 200 if not problems else 503
        body = {
            "ready": not problems,
            "problems": problems,
            "spoolDepth": sink.spool.depth(),
            # Visible to whoever watches readiness, in every environment.
            "signatureChecks": config.validate_signatures,
        }
        return jsonify(body), status

    return app
