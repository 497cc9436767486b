"""Twilio's webhooks (`/api/twilio/...`): signature, fields, a durable event, then TwiML.

Every callback goes the same way: check the signature (403, nothing
produced), check the fields (400), make the event durable (Kafka, or the
spool when Kafka cannot take it in time; 503 only when neither can), then
answer. The incoming-call webhook additionally asks router for TwiML; so
does the dial-status callback of a call flow's <Dial> (marked by
`flowStep`), for the flow's next step. When router does not answer in time,
ingress answers from its routing copy (routing_copy.py) as router would
have, publishing the `call.routed` fact itself; only a number it has never
seen gets the safe apology (and `call.fallback-served`).

The TwiML a call flow's legs fetch while the call runs (the answering leg's
whisper and screening, the screening digit, the end of a voicemail) is pure
and served here, signature-checked, so a flow runs whole while router is down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Blueprint, Response, g, request

from services.ingress import twiml
from services.ingress.router_client import RouterUnavailable
from services.ingress.routing_copy import CallContext, answer_after_dial, answer_call
from services.ingress.sink import PendingEvent
from services.ingress.spool import SpoolError
from services.ingress.webhooks import WEBHOOKS, MalformedWebhook, fallback_event, to_event
from switchboard import events
from switchboard.callflow_twiml import (
    FLOW_ANSWER_PATH,
    FLOW_SCREEN_PATH,
    SCREEN_PARAM,
    STEP_PARAM,
    VOICEMAIL_DONE_PATH,
    WHISPER_PARAM,
    answer_twiml,
    leg_whisper,
    screen_twiml,
    voicemail_done_twiml,
)
from switchboard.http import ApiError
from switchboard.twilio_signatures import base_url, public_url

if TYPE_CHECKING:
    from services.ingress.app import IngressRuntime

log = logging.getLogger(__name__)

# With signature checks off, the integration guide's curl test (no AccountSid)
# is told apart from Twilio by this account unless one is configured.
UNSIGNED_TEST_ACCOUNT = "AC" + "0" * 32
# The query parameter router puts on a call flow's <Dial action>.
FLOW_STEP = STEP_PARAM
PREFIX = "/api/twilio"


def twilio_api(runtime: IngressRuntime) -> Blueprint:
    """The webhooks Twilio posts to and a call flow's leg TwiML, as the edge routes them here."""
    config, sink, metrics = runtime.config, runtime.sink, runtime.metrics
    api = Blueprint("twilio", __name__, url_prefix=PREFIX)

    def signed(kind: str) -> str:
        """The public URL Twilio requested, once its signature checks out (else 403)."""
        url = public_url(request, config.public_base)
        if config.validate_signatures and not runtime.checker.is_valid(
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
        return url

    def checked(kind: str) -> tuple[events.Event, dict[str, str]]:
        """The webhook's validated event once signature and fields check out (nothing stored)."""
        hook = WEBHOOKS[kind]
        if request.mimetype != "application/x-www-form-urlencoded":
            raise ApiError(
                415,
                "unsupported_media_type",
                "Twilio webhooks are application/x-www-form-urlencoded",
            )
        url = signed(kind)
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

    def context() -> CallContext:
        """Where TwiML from the routing copy points, and the moment its hours are judged at."""
        base = base_url(request, config.public_base)
        return CallContext(base, config.dial_timeout, runtime.clock())

    def keep(event: events.Event) -> None:
        """Make an event ingress adds to a call durable; a lost one is logged, the caller served."""
        try:
            sink.put(event)
        except SpoolError:
            log.error("%s lost: spool unavailable", event.type, extra={"callSid": event.callSid})

    @api.post("/webhook")
    def incoming_call() -> Response:
        event, params = checked("voice")
        # Ask router while Kafka acknowledges the event: the caller waits for
        # the slower of the two, not for both in turn. The TwiML is only
        # answered once the event is durable.
        pending = sink.send(event)
        failure: str | None = None
        routed: events.Event | None = None
        try:
            body = runtime.router.twiml_for(params, g.request_id)
        except RouterUnavailable as err:
            failure = str(err)
            copied = answer_call(runtime.copy, params, context(), g.request_id)
            if copied is None:
                body = twiml.fallback()
            else:
                body, routed = copied.twiml, copied.routed
        make_durable(pending)
        where = {"callSid": params["CallSid"], "requestId": g.request_id}
        if routed is not None:
            log.warning(
                "router unavailable, answered from the routing copy: %s", failure, extra=where
            )
            keep(routed)
            runtime.copy_answers.inc()
        elif failure is not None:
            log.error("serving fallback TwiML: %s", failure, extra=where)
            keep(fallback_event(params, failure, g.request_id))
            runtime.fallbacks.inc()
        return Response(body, mimetype="text/xml")

    @api.post("/status")
    def call_status() -> Response:
        accept("status")
        return Response(twiml.empty(), mimetype="text/xml")

    @api.post("/dial-status")
    def dial_status() -> Response:
        event, params = checked("dial-status")
        make_durable(sink.send(event))
        step = request.args.get(FLOW_STEP, "")
        if not step:
            return Response(twiml.after_dial(), mimetype="text/xml")
        # A <Dial> of a call flow: router says what follows (the next target,
        # voicemail), else the routing copy; failing both, the call ends as any
        # other after its <Dial>.
        try:
            body = runtime.router.after_dial_for({**params, FLOW_STEP: step}, g.request_id)
        except RouterUnavailable as err:
            where = {"callSid": params.get("CallSid"), "requestId": g.request_id}
            copied = answer_after_dial(runtime.copy, params, step, context())
            if copied is None:
                log.error(
                    "no flow step from router, hanging up after the dial: %s", err, extra=where
                )
                body = twiml.after_dial()
            else:
                log.warning(
                    "router unavailable, flow step from the routing copy: %s", err, extra=where
                )
                body = copied.twiml
                runtime.copy_answers.inc()
        return Response(body, mimetype="text/xml")

    @api.route(FLOW_ANSWER_PATH.removeprefix(PREFIX), methods=["GET", "POST"])
    def flow_answer() -> Response:
        """The answering leg of a call flow: everything it hears is in the URL of <Number url>."""
        signed("flow-answer")
        whisper = leg_whisper(request.args.get(WHISPER_PARAM))
        screening = request.args.get(SCREEN_PARAM) == "1"
        body = answer_twiml(whisper, screening, base_url(request, config.public_base))
        return Response(body, mimetype="text/xml")

    @api.post(FLOW_SCREEN_PATH.removeprefix(PREFIX))
    def flow_screen() -> Response:
        signed("flow-screen")
        return Response(screen_twiml(request.form.get("Digits")), mimetype="text/xml")

    @api.post(VOICEMAIL_DONE_PATH.removeprefix(PREFIX))
    def voicemail_done() -> Response:
        signed("voicemail-done")
        return Response(voicemail_done_twiml(), mimetype="text/xml")

    @api.post("/recording-status")
    def recording_status() -> Response:
        accept("recording-status")
        return Response(twiml.empty(), mimetype="text/xml")

    return api
