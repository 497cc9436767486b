"""A number's call flow over HTTP: its management API and the TwiML of its later steps.

`flow_api`: GET / PUT /api/numbers/<phoneNumber>/flow, thin routes over
`Management.flow` and `Management.set_flow`. The admin may read and set any
number's flow; a client key only those of its own numbers, and any other
number answers 404 exactly like a number nobody holds. The answer is the
flow with every default filled in, or `{}` for a number that has none (and
is forwarded as before flows existed); PUT `{}` removes it.

`flow_twilio_api`: what Twilio fetches while a flow runs (the answering
leg's whisper and screening, the end of a voicemail) and
POST /internal/flow/after-dial, where ingress asks what follows a ringing
<Dial> (the next target, or voicemail / forward) after it has kept the
dial-status callback as an event. The TwiML is flow_twiml.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, request

from services.router.api import number_in_path
from services.router.directory import UNSAFE_TEXT, NumberAssignment
from services.router.flow_twiml import (
    FLOW_ANSWER_PATH,
    FLOW_SCREEN_PATH,
    FORWARD_STEP,
    SCREEN_PARAM,
    STEP_PARAM,
    VOICEMAIL_DONE_PATH,
    WHISPER_PARAM,
    after_dial_twiml,
    answer_twiml,
    screen_twiml,
    voicemail_done_twiml,
)
from services.router.flows import MAX_SAY, MAX_TARGETS, Flow
from services.router.management import Management
from services.router.routing import decide
from switchboard.auth import authenticate
from switchboard.http import ApiError, json_object

AFTER_DIAL_PATH = "/internal/flow/after-dial"
Lookup = Callable[[str], NumberAssignment | None]


def flow_api(management: Management, admin_token: str) -> Blueprint:
    api = Blueprint("router_flows", __name__, url_prefix="/api/numbers")

    @api.before_request
    def _authenticate() -> None:
        g.principal = authenticate(admin_token, management.principal_for_key)

    @api.get("/<phone_number>/flow")
    def get_flow(phone_number: str) -> Response:
        return flow_json(management.flow(g.principal, number_in_path(phone_number)))

    @api.put("/<phone_number>/flow")
    def put_flow(phone_number: str) -> Response:
        phone = number_in_path(phone_number)
        return flow_json(management.set_flow(g.principal, phone, json_object()))

    return api


def flow_json(flow: Flow | None) -> Response:
    return jsonify(flow.to_json() if flow else {})


def flow_twilio_api(
    lookup: Lookup,
    base_url: str,
    dial_timeout: int,
    clock: Callable[[], datetime] | None = None,
) -> Blueprint:
    """The flow's Twilio-facing routes; `lookup` is the routing table's."""
    twilio = Blueprint("router_flow_twilio", __name__)
    now = clock or (lambda: datetime.now(UTC))

    @twilio.route(FLOW_ANSWER_PATH, methods=["GET", "POST"])
    def answer() -> Response:
        # Everything the leg hears is in the URL router wrote into <Number url>.
        raw = UNSAFE_TEXT.sub("", request.args.get(WHISPER_PARAM) or "")
        whisper = raw.strip()[:MAX_SAY] or None
        screening = request.args.get(SCREEN_PARAM) == "1"
        return twiml(answer_twiml(whisper, screening, base_url))

    @twilio.post(FLOW_SCREEN_PATH)
    def screen() -> Response:
        return twiml(screen_twiml(request.form.get("Digits")))

    @twilio.post(VOICEMAIL_DONE_PATH)
    def voicemail_done() -> Response:
        return twiml(voicemail_done_twiml())

    @twilio.post(AFTER_DIAL_PATH)
    def after_dial() -> Response:
        called = request.form.get("To", "").strip()
        status = request.form.get("DialCallStatus", "").strip()
        if not called or not status:
            raise ApiError(400, "missing_field", "To and DialCallStatus are required")
        step = dial_step(request.form.get(STEP_PARAM, ""))
        decision = decide(called, lookup(called), now())
        if step is None or decision.flow is None or decision.disposition != "forwarded":
            # The after-hours forward has ended, or the flow is gone since the call began.
            return twiml(voicemail_done_twiml())
        bridged = request.form.get("DialBridged")
        return twiml(
            after_dial_twiml(decision, decision.flow, step, status, bridged, base_url, dial_timeout)
        )

    return twilio


def dial_step(raw: str) -> int | None:
    """The ringing step a <Dial> action reports (None: the after-hours forward); 400 if neither."""
    if raw == FORWARD_STEP:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) >= MAX_TARGETS:
        raise ApiError(400, "invalid_field", f"{STEP_PARAM} must be 0 to {MAX_TARGETS - 1}")
    return int(raw)


def twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")
