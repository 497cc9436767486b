"""GET / PUT /api/numbers/<phoneNumber>/flow: a number's call flow over HTTP.

Thin routes over `Management.flow` and `Management.set_flow`. The admin may
read and set any number's flow; a client key only those of its own numbers,
and any other number answers 404 exactly like a number nobody holds. The
answer is the flow with every default filled in, or `{}` for a number that
has none (and is forwarded as before flows existed); PUT `{}` removes it.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from services.router.api import number_in_path
from services.router.flows import Flow
from services.router.management import Management
from switchboard.auth import authenticate
from switchboard.http import json_object


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
