"""What the fuzz tests share: bounded hypothesis settings and sending a drawn request."""

from __future__ import annotations

from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from werkzeug.test import TestResponse

from tests.fuzz.bad_input import BadRequest

# Bounded: a few hundred requests per endpoint group, well under a minute in all.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Oversized bodies are all alike past the limit: a few of each suffice.
FUZZ_LARGE = settings(FUZZ, max_examples=20)


def send(http: FlaskClient, bad: BadRequest) -> TestResponse:
    return http.open(bad.path, method=bad.method, data=bad.body, headers=bad.headers)


def refused_as_expected(bad: BadRequest, reply: TestResponse) -> str | None:
    """None when `reply` is one of the 4xx `bad` may get, with the JSON error shape."""
    if reply.status_code not in bad.expect:
        return f"{reply.status_code} (expected {sorted(bad.expect)[:4]}): {reply.data[:300]!r}"
    body = reply.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return f"{reply.status_code} without the JSON error shape: {reply.data[:300]!r}"
    error = body["error"]
    if not error.get("code") or not error.get("message"):
        return f"{reply.status_code} error without code and message: {error}"
    return None
