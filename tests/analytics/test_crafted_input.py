"""Crafted input to the analytics API gets a 400 with a reason, never a 500.

A cursor is client input: invalid base64, base64 of deep JSON (which once
recursed out of Python's decoder), of a non-list, of the wrong types or of a
time no Int64 holds. A conversion's body may nest deeper than any real one. Besides the listed
cases, hypothesis draws both from tests/fuzz/bad_input.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given

from tests.analytics.conftest import AUTH
from tests.fuzz.bad_input import (
    crafted_analytics_reads,
    crafted_cursors,
    deeply_nested_bodies,
)
from tests.fuzz.conftest import FUZZ


def token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def http(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


@pytest.mark.parametrize(
    "cursor",
    [
        token(b"[" * 50_000),
        token(b"[" * 500 + b"]" * 500),
        token(b'[[1], "CA1"]'),
        "%%%",
        "a",
        "ŝŝŝŝ",
        "A" * 5000,
        token(b"5"),
        token(b'"CA1"'),
        token(b'{"startedAt": 1, "callSid": "CA1"}'),
        token(b'{"a": 1, "b": 2}'),
        token(b'[true, "CA1"]'),
        token(b'["1", "CA1"]'),
        token(b"[1, 2]"),
        token(b'[1.5, "CA1"]'),
        token(b'[-1, "CA1"]'),
        token(json.dumps([2**70, "CA1"]).encode()),
        token(b'[1, "CA1", 3]'),
        token(b"[1" + b"0" * 5000 + b', "CA1"]'),
        token(b"\xff\xfe"),
    ],
)
def test_a_crafted_cursor_is_400_invalid_cursor(http: FlaskClient, cursor: str) -> None:
    response = http.get("/api/calls", query_string={"cursor": cursor}, headers=AUTH)
    assert response.status_code == 400, response.data[:300]
    assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_an_issued_cursor_is_still_accepted(http: FlaskClient) -> None:
    response = http.get(
        "/api/calls", query_string={"cursor": token(b'[1714564800000,"CA1"]')}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.get_json() == {"calls": [], "nextCursor": None}


@pytest.mark.parametrize("value", ["²", "٣", "３", "9" * 5000, "1" + "0" * 4400])
@pytest.mark.parametrize(
    "path",
    [
        "/api/calls?limit=",
        "/api/calls?format=csv&limit=",
        "/api/calls?minDuration=",
        "/api/analytics/top-callers?limit=",
        "/api/analytics/geography?limit=",
        "/api/analytics/missed-calls?limit=",
        "/api/analytics/summary?minDuration=",
    ],
)
def test_non_ascii_or_huge_counts_are_400(http: FlaskClient, path: str, value: str) -> None:
    response = http.get(path + value, headers=AUTH)
    assert response.status_code == 400, response.data[:300]
    assert response.get_json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000,
        b'{"callSid": ' + b"[" * 50_000,
        b'{"callSid": "CA1", "value": ' + b"{" * 40 + b"}" * 40 + b"}",
        b'{"callSid": "CA1", "x": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"}",
    ],
)
def test_a_deeply_nested_conversion_body_is_400(http: FlaskClient, body: bytes) -> None:
    response = http.post(
        "/api/analytics/conversions",
        data=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.data[:300]
    error = response.get_json()["error"]
    assert error["code"] == "invalid_body"
    assert "deep" in error["message"]


def test_fuzzed_cursors_and_deep_bodies_never_get_a_5xx(http: FlaskClient) -> None:
    @FUZZ
    @given(crafted_cursors())
    def cursor_refused(cursor: str) -> None:
        for fmt in ("json", "csv"):
            query = {"cursor": cursor, "format": fmt}
            reply = http.get("/api/calls", query_string=query, headers=AUTH)
            assert reply.status_code == 400, (cursor[:100], reply.data[:300])
            assert reply.get_json()["error"]["code"] == "invalid_cursor"

    @FUZZ
    @given(deeply_nested_bodies())
    def body_refused(body: bytes) -> None:
        reply = http.post(
            "/api/analytics/conversions",
            data=body,
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert reply.status_code == 400, (body[:100], reply.data[:300])
        assert reply.get_json()["error"]["code"] == "invalid_body"

    cursor_refused()
    body_refused()


def test_fuzzed_read_parameters_never_get_a_5xx(http: FlaskClient) -> None:
    @FUZZ
    @given(crafted_analytics_reads())
    def answered_or_refused(url: str) -> None:
        reply = http.get(url, headers=AUTH)
        assert reply.status_code in (200, 400), (url, reply.status_code, reply.data[:300])
        if reply.status_code == 400:
            assert reply.get_json()["error"]["message"]

    answered_or_refused()
