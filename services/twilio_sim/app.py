"""Twilio simulator HTTP app: Twilio's REST API plus the simulator's control API.

Paths under /2010-04-01/ behave like api.twilio.com (HTTP basic auth with the
account SID and auth token, Twilio's JSON and error shapes; rest.py, and the
Messages API in messaging.py); /sim/ drives the simulation (control.py, and
/sim/messages in messaging.py). State lives in memory for the life of the
process, so the app runs in one worker with threads.
"""

from __future__ import annotations

import hmac

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from services.twilio_sim.config import Config
from services.twilio_sim.control import control_routes
from services.twilio_sim.messaging import Messages, messaging_routes
from services.twilio_sim.resources import API, error_body
from services.twilio_sim.rest import TwilioError, rest_routes
from services.twilio_sim.state import SimState
from switchboard.http import error_response, install_error_handlers

MAX_BODY_BYTES = 256 * 1024  # an inline Twiml parameter can be long


def _twilio_error(status: int, code: int, message: str) -> Response:
    response = jsonify(error_body(status, code, message))
    response.status_code = status
    return response


def create_app(config: Config | None = None, state: SimState | None = None) -> Flask:
    config = config or Config.from_env()
    state = state or SimState()
    app = Flask(__name__, static_folder=None)
    install_error_handlers(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["twilio_sim.state"] = state

    @app.errorhandler(TwilioError)
    def _twilio(err: TwilioError) -> Response:
        return _twilio_error(err.status, err.code, err.message)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response | tuple[Response, int]:
        status = err.code or 500
        if request.path.startswith(API + "/"):
            if status == 404:
                return _twilio_error(
                    404, 20404, f"The requested resource {request.path} was not found"
                )
            if status == 405:
                return _twilio_error(405, 20004, "Method not allowed")
            return _twilio_error(status, 20001, err.description or err.name)
        code = (err.name or "error").lower().replace(" ", "_")
        return error_response(status, code, err.description or err.name)

    @app.before_request
    def _authenticate() -> Response | None:
        if not request.path.startswith(API + "/"):
            return None
        auth = request.authorization
        valid = (
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest((auth.username or "").encode(), config.account_sid.encode())
            and hmac.compare_digest((auth.password or "").encode(), config.auth_token.encode())
        )
        if not valid:
            response = _twilio_error(401, 20003, "Authenticate")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        path_account = (request.view_args or {}).get("account_sid")
        if path_account is not None and path_account != config.account_sid:
            return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        return None

    app.register_blueprint(rest_routes(config, state))
    app.register_blueprint(control_routes(config, state))
    app.register_blueprint(messaging_routes(config, state, Messages()))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        return jsonify({"ready": True, "problems": []})

    return app
