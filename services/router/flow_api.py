"""A number's call flow over HTTP: its management API and the TwiML of its later steps.

`flow_api`: GET / PUT /api/numbers/<phoneNumber>/flow, thin routes over
`Management.flow` and `Management.set_flow`. The admin may read and set any
number's flow; a client key only those of its own numbers, and any other
number answers 404 exactly like a number nobody holds. The answer is the
flow with every default filled in, or `{}` for a number that has none (and
is forwarded as before flows existed); PUT `{}` removes it.

`flow_twilio_api`: POST /internal/flow/after-dial, where ingress asks what
follows a ringing <Dial> (the next target, or voicemail / forward) after it
has kept the dial-status callback as an event. The TwiML is the kernel's
(switchboard/callflow_twiml.py); the pure documents Twilio fetches while a
flow runs (the answering leg's whisper and screening, the end of a
voicemail) are served by ingress, so they work while router is down.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, request

from services.router.api import number_in_path
from services.router.directory import NumberAssignment
from services.router.flows import Flow
from services.router.management import Management
from services.router.routing import decide
from switchboard.auth import authenticate
from switchboard.callflow_twiml import STEP_PARAM, dial_step, next_step_twiml
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
    """What follows a flow's <Dial>, for ingress; `lookup` is the routing table's."""
    twilio = Blueprint("router_flow_twilio", __name__)
    now = clock or (lambda: datetime.now(UTC))

    @twilio.post(AFTER_DIAL_PATH)
    def after_dial() -> Response:
        called = request.form.get("To", "").strip()
        status = request.form.get("DialCallStatus", "").strip()
        if not called or not status:
            raise ApiError(400, "missing_field", "To and DialCallStatus are required")
        try:
            step = dial_step(request.form.get(STEP_PARAM, ""))
        except ValueError as err:
            raise ApiError(400, "invalid_field", str(err)) from None
        decision = decide(called, lookup(called), now())
        bridged = request.form.get("DialBridged")
        return twiml(next_step_twiml(decision, step, status, bridged, base_url, dial_timeout))

    return twilio


def twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")
