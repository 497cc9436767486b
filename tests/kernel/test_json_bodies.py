"""The one JSON body parser: malformed or too deeply nested bodies are a 400, never a 500.

Python's JSON decoder recurses once per level, so `[` * 50,000 used to end
in RecursionError and a 500 with a traceback. `parse_json` measures the
nesting on the text first (brackets inside strings do not count) and
`json_object` answers 400 `invalid_body` with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask, jsonify

from switchboard.http import (
    MAX_JSON_DEPTH,
    InvalidJson,
    install_error_handlers,
    json_object,
    nesting_depth,
    parse_json,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("1", 0),
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[{{{{"}', 1),
        ('{"a": "\\"[[[", "b": [[]]}', 3),
        ('["\\\\", [[]]]', 3),
        ('"unterminated [[[[', 0),
        (nested(50_000), 50_000),
    ],
)
def test_nesting_is_measured_on_the_text_ignoring_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_nesting_up_to_the_limit_is_parsed() -> None:
    assert parse_json(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))


@pytest.mark.parametrize(
    "raw",
    [
        nested(MAX_JSON_DEPTH + 1).encode(),
        b"[" * 50_000,
        b"{" * 50_000,
        b'{"a":' * 50_000,
        ("[" * 50_000).encode("utf-16"),
    ],
)
def test_deeper_nesting_is_refused_without_recursing(raw: bytes) -> None:
    with pytest.raises(InvalidJson, match="levels deep"):
        parse_json(raw)


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"\xff\xfe\xfd", b"\xed\xa0\x80", b"[1,]", b"1" + b"0" * 5000]
)
def test_malformed_json_is_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(InvalidJson):
        parse_json(raw)


def test_utf16_and_utf8_bodies_are_read() -> None:
    assert parse_json('{"a": "é"}'.encode("utf-16")) == {"a": "é"}
    assert parse_json('{"a": "é"}'.encode()) == {"a": "é"}


@pytest.fixture
def app() -> Flask:
    made = Flask(__name__)
    install_error_handlers(made)

    @made.post("/things")
    def things() -> object:
        return jsonify(json_object(required=("name",)))

    return made


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000,
        b'{"name": "x", "extra": ' + b"[" * 50_000,
        b'{"name": "x", "extra": ' + nested(MAX_JSON_DEPTH).encode() + b"}",
    ],
)
def test_a_deeply_nested_body_is_400_invalid_body(app: Flask, body: bytes) -> None:
    reply = app.test_client().post("/things", data=body, content_type="application/json")
    assert reply.status_code == 400
    error = reply.get_json()["error"]
    assert error["code"] == "invalid_body"
    assert "levels deep" in error["message"]


def test_an_ordinary_body_still_passes(app: Flask) -> None:
    reply = app.test_client().post("/things", json={"name": "x", "tags": [["a"]]})
    assert reply.status_code == 200
    assert reply.get_json() == {"name": "x", "tags": [["a"]]}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"name": "x"}', "text/plain"),
        (b"\xff", "application/json"),
        (b"[1]", "application/json"),
        (b"{", "application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(
    app: Flask, body: bytes, content_type: str
) -> None:
    reply = app.test_client().post("/things", data=body, content_type=content_type)
    assert reply.status_code == 400
    assert reply.get_json()["error"]["code"] == "invalid_body"


def test_no_route_reads_a_json_body_but_through_json_object() -> None:
    """Flask's own get_json would hand `[` * 50,000 to the recursive decoder again."""
    root = Path(__file__).resolve().parents[2]
    readers = re.compile(r"\bget_json\(|\brequest\.json\b|loads\(\s*request\b")
    found = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for folder in ("services", "switchboard")
        for path in sorted((root / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if readers.search(line)
    ]
    assert found == []
