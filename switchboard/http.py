"""The JSON error shape that crosses every HTTP boundary.

Errors leave as `{"error": {"code": "...", "message": "..."}}` with the right
status. Routes raise `ApiError`; werkzeug's own HTTP errors (404, 405, 413,
malformed bodies) get the same shape, and nothing unexpected leaks as HTML.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def install_error_handlers(app: Flask) -> None:
    # Flask's default config holds MAX_CONTENT_LENGTH = None, so set it outright.
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> tuple[Response, int]:
        return error_response(err.status, err.code, err.message)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[Response, int]:
        status = err.code or 500
        code = (err.name or "error").lower().replace(" ", "_")
        return error_response(status, code, err.description or err.name)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error")


def json_object(required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's JSON object body, or a 400 saying what is wrong with it."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "request body must be a JSON object")
    missing = [name for name in required if body.get(name) in (None, "")]
    if missing:
        raise ApiError(400, "missing_field", f"missing required field(s): {', '.join(missing)}")
    return body
