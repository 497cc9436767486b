"""The router's public HTTP API: management of clients, numbers, keys; Twilio paths.

Thin routes: each reads the request, asks `Management`, shapes the answer.
Every path under /api needs `Authorization: Bearer <admin token or client
key>`, except the two that cannot carry one: GET /api/twilio/twiml (Twilio
fetches it while placing a make-call call) and GET /api/openapi.json (the
document describing all of this, see openapi.py; mounted by app.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from services.router.access import parse_key_name
from services.router.audit import AuditQuery
from services.router.directory import iso_utc, optional_area_code, parse_e164, refuse_unknown
from services.router.management import Management, number_not_found
from switchboard.auth import Principal, authenticate
from switchboard.http import ApiError, json_object
from switchboard.twilio_signatures import SignatureChecker, public_url

MAX_REQUEST_ID = 200
DEFAULT_OFFERS = 10
MAX_OFFERS = 30


def management_api(management: Management, admin_token: str) -> Blueprint:
    api = Blueprint("router_api", __name__, url_prefix="/api")

    @api.before_request
    def _authenticate() -> None:
        g.principal = authenticate(admin_token, management.principal_for_key)

    def who() -> Principal:
        principal: Principal = g.principal
        return principal

    # ---- clients
    @api.post("/clients")
    def create_client() -> tuple[Response, int]:
        client = management.create_client(who(), json_object())
        response = jsonify(client.to_json())
        response.headers["Location"] = f"/api/clients/{client.id}"
        return response, 201

    @api.get("/clients")
    def list_clients() -> Response:
        return jsonify({"clients": [c.to_json() for c in management.clients(who())]})

    @api.get("/clients/<client_id>")
    def get_client(client_id: str) -> Response:
        return jsonify(management.client(who(), client_id).to_json())

    @api.patch("/clients/<client_id>")
    def patch_client(client_id: str) -> Response:
        updated = management.update_client(who(), client_id, json_object(), whole=False)
        return jsonify(updated.to_json())

    @api.put("/clients/<client_id>")
    def put_client(client_id: str) -> Response:
        updated = management.update_client(who(), client_id, json_object(), whole=True)
        return jsonify(updated.to_json())

    @api.delete("/clients/<client_id>")
    def delete_client(client_id: str) -> Response:
        purge_after = management.delete_client(who(), client_id)
        return jsonify({"id": client_id, "deleted": True, "purgeAfter": iso_utc(purge_after)})

    # ---- a client's numbers
    @api.post("/clients/<client_id>/numbers")
    def assign_number(client_id: str) -> tuple[Response, int]:
        assignment = management.assign_number(who(), client_id, json_object())
        response = jsonify(assignment.to_json())
        response.headers["Location"] = f"/api/clients/{client_id}/numbers/{assignment.phone_number}"
        return response, 201

    @api.get("/clients/<client_id>/numbers")
    def list_numbers(client_id: str) -> Response:
        numbers = management.numbers(who(), client_id)
        return jsonify({"numbers": [n.to_json() for n in numbers]})

    @api.get("/clients/<client_id>/numbers/<phone_number>")
    def get_number(client_id: str, phone_number: str) -> Response:
        return jsonify(management.number(who(), client_id, number_in_path(phone_number)).to_json())

    @api.patch("/clients/<client_id>/numbers/<phone_number>")
    def patch_number(client_id: str, phone_number: str) -> Response:
        phone = number_in_path(phone_number)
        updated = management.update_number(who(), client_id, phone, json_object())
        return jsonify(updated.to_json())

    @api.delete("/clients/<client_id>/numbers/<phone_number>")
    def release_number(client_id: str, phone_number: str) -> tuple[str, int]:
        management.release_number(who(), client_id, number_in_path(phone_number))
        return "", 204

    # ---- a client's API keys
    @api.post("/clients/<client_id>/api-keys")
    def issue_key(client_id: str) -> tuple[Response, int]:
        name = parse_key_name(optional_json_object())
        issued, key = management.issue_key(who(), client_id, name)
        return jsonify({"key": issued.key, **key.to_json()}), 201

    @api.get("/clients/<client_id>/api-keys")
    def list_keys(client_id: str) -> Response:
        keys = management.api_keys(who(), client_id)
        return jsonify({"keys": [k.to_json() for k in keys]})

    @api.delete("/clients/<client_id>/api-keys/<key_id>")
    def revoke_key(client_id: str, key_id: str) -> tuple[str, int]:
        management.revoke_key(who(), client_id, key_id)
        return "", 204

    # ---- audit
    @api.get("/audit")
    def audit_log() -> Response:
        query = AuditQuery.parse(request.args)
        entries = management.audit_log(who(), query)
        next_before = entries[-1].id if len(entries) == query.limit else None
        return jsonify({"entries": [e.to_json() for e in entries], "nextBefore": next_before})

    # ---- Twilio: the numbers held, buying, calling
    @api.get("/twilio/numbers")
    def owned_numbers() -> Response:
        refuse_unknown(request.args, ("status",))
        numbers = management.owned_numbers(who(), request.args.get("status") or None)
        return jsonify({"numbers": [n.to_json() for n in numbers]})

    @api.get("/twilio/purchase-number")
    def available_numbers() -> Response:
        refuse_unknown(request.args, ("areaCode", "limit"))
        area_code = optional_area_code("areaCode", request.args.get("areaCode") or None)
        limit = offers_limit(request.args.get("limit"))
        offers = management.available_numbers(who(), area_code, limit)
        return jsonify({"numbers": [offer.to_json() for offer in offers]})

    @api.post("/twilio/purchase-number")
    def purchase_number() -> tuple[Response, int]:
        body = json_object()
        refuse_unknown(body, ("areaCode",))
        bought = management.purchase_number(
            who(), optional_area_code("areaCode", body.get("areaCode"))
        )
        return jsonify(
            {
                "phoneNumber": bought.phone_number,
                "sid": bought.sid,
                "locality": bought.locality,
                "region": bought.region,
            }
        ), 201

    @api.post("/twilio/make-call")
    def make_call() -> tuple[Response, int]:
        request_id = request.headers.get("X-Request-Id", "").strip()[:MAX_REQUEST_ID] or None
        call_sid = management.make_call(who(), json_object(), request_id)
        return jsonify({"callSid": call_sid}), 201

    return api


def public_api(
    management: Management, auth_token: str | None, public_base: str, validate: bool = True
) -> Blueprint:
    """The TwiML Twilio fetches for an outbound call, signed by Twilio with `auth_token`.

    With `validate` off (development only) unsigned requests are served too;
    with it on and no auth token nothing can be checked, so nothing is served.
    """
    public = Blueprint("router_public", __name__, url_prefix="/api")
    checker = SignatureChecker(auth_token) if auth_token else None

    @public.route("/twilio/twiml", methods=["GET", "POST"])
    def twiml() -> Response:
        if validate and (
            checker is None
            or not checker.is_valid(
                public_url(request, public_base),
                request.form,
                request.headers.get("X-Twilio-Signature"),
            )
        ):
            raise ApiError(403, "invalid_signature", "X-Twilio-Signature does not match")
        # Twilio adds its call parameters to a POST body; ours are in the query string.
        return Response(management.twiml(request.args), mimetype="text/xml")

    return public


def number_in_path(raw: str) -> str:
    """A phone number in a URL path; its `+` may arrive as is or as %2B."""
    try:
        return parse_e164("phoneNumber", raw)
    except ApiError:
        raise number_not_found(raw) from None


def offers_limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_OFFERS
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_OFFERS:
        raise ApiError(400, "invalid_query", f"limit must be a whole number from 1 to {MAX_OFFERS}")
    return int(raw)


def optional_json_object() -> dict[str, Any]:
    """The JSON object body, or {} when the request has no body at all."""
    if not request.get_data(cache=True):
        return {}
    return json_object()
