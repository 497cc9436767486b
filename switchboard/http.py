"""The JSON error shape that crosses every HTTP boundary.

Errors leave as `{"error": {"code": "...", "message": "..."}}` with the right
status. Routes raise `ApiError`; werkzeug's own HTTP errors (404, 405, 413,
malformed bodies) get the same shape, and nothing unexpected leaks as HTML.
Every JSON body is read by `json_object`, through `parse_json`, which refuses
nesting deeper than `MAX_JSON_DEPTH` before the recursive decoder sees it.
`health_routes` gives a service /healthz and a /readyz that names its problems.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# The API's bodies are flat objects; 32 levels leave room for any that grow a
# little, and stay far below the depth where Python's decoder recurses out.
MAX_JSON_DEPTH = 32

# A JSON string, or what is left of one that is never closed. Possessive, and
# matching even when unterminated, so the scan stays linear on any input.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


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


def health_routes(
    app: Flask,
    problems: Callable[[], dict[str, str]],
    details: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """/healthz (the process answers) and /readyz: 200, or 503 naming each problem.

    `problems` checks what the service needs to work (its database, its
    consumer) and names each that fails; `details` adds what /readyz shows
    besides.
    """

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        found = problems()
        body: dict[str, Any] = {"ready": not found, "problems": found}
        if details is not None:
            body.update(details())
        return jsonify(body), 503 if found else 200


def failure(err: BaseException) -> str:
    """An exception as a readiness problem: its message, or its type when it has none."""
    return str(err) or type(err).__name__


def probe(name: str, check: Callable[[], object]) -> dict[str, str]:
    """A readiness check: nothing when `check` returns, else {name: why it failed}."""
    try:
        check()
    except Exception as err:  # any failure means: not ready
        return {name: failure(err)}
    return {}


class InvalidJson(ValueError):
    """A body or token that is not JSON this service will read; the message says why."""


def nesting_depth(text: str) -> int:
    """How deep brackets nest in `text`, ignoring those inside strings (no recursion)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def parse_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in `raw` (UTF-8, -16 or -32), or `InvalidJson` saying what is wrong.

    Depth is checked on the text first: Python's decoder recurses once per
    level and would otherwise raise RecursionError on `[[[[...`.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode(json.detect_encoding(raw))
        except (UnicodeDecodeError, LookupError):
            raise InvalidJson("body is not UTF-8 (or UTF-16/32) text") from None
    else:
        text = raw
    depth = nesting_depth(text)
    if depth > max_depth:
        raise InvalidJson(f"JSON nests {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InvalidJson(f"not valid JSON: {err}") from None


def json_object(required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's JSON object body, or a 400 saying what is wrong with it."""
    if not request.is_json:
        raise ApiError(
            400, "invalid_body", "request body must be a JSON object sent as application/json"
        )
    try:
        body = parse_json(request.get_data(cache=True))
    except InvalidJson as err:
        raise ApiError(400, "invalid_body", f"request body: {err}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "request body must be a JSON object")
    missing = [name for name in required if body.get(name) in (None, "")]
    if missing:
        raise ApiError(400, "missing_field", f"missing required field(s): {', '.join(missing)}")
    return body


MAX_QUERY_TEXT = 200


def invalid_query(name: str, reason: str) -> ApiError:
    return ApiError(400, "invalid_query", f"{name} {reason}")


def query_text(args: Mapping[str, str], name: str) -> str | None:
    """A free-text filter from the query string; None when absent or empty."""
    value = args.get(name)
    if not value:
        return None
    if len(value) > MAX_QUERY_TEXT or "\x00" in value:
        raise invalid_query(name, f"must be at most {MAX_QUERY_TEXT} characters without NUL")
    return value


def query_number(args: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """A whole number from the query string in [low, high] (ASCII digits only); None if absent."""
    raw = args.get(name)
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20 or not low <= int(raw) <= high:
        raise invalid_query(name, f"must be a whole number from {low} to {high}")
    return int(raw)
