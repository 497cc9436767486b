"""Hypothesis strategies for requests that must be refused: forged, malformed, oversized.

Every request drawn here is bad by construction, so a 2xx, a 5xx, an event
or a row is always a bug: webhooks without a valid X-Twilio-Signature or
without a field Twilio always sends, wrong media types, bodies that are not
UTF-8, bodies over the 64 KiB limit; management API calls without the admin
token, or with it and a body that cannot be valid (not JSON, not an object,
an unknown field, or a known field with a value of the wrong kind, or nested
far deeper than any real body). Crafted shapes for the other services sit at
the end: deeply nested JSON, Range headers with non-ASCII or huge positions,
and call-list cursors the API never issued.
"""

from __future__ import annotations

import base64
import json
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from switchboard.http import MAX_BODY_BYTES
from tests.twilio_calls import ForwardedCall, sign

OVERSIZED = MAX_BODY_BYTES + 1024


@dataclass(frozen=True)
class BadRequest:
    """One request, and the statuses it may get (all 4xx)."""

    kind: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    expect: frozenset[int] = frozenset(range(400, 500))

    def __repr__(self) -> str:  # shown by hypothesis when an example fails
        shown = self.body[:200] + (b"..." if len(self.body) > 200 else b"")
        return (
            f"BadRequest({self.kind}: {self.method} {self.path} headers={self.headers} "
            f"body[{len(self.body)}]={shown!r} expect={sorted(self.expect)[:3]}...)"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer
        printer.text(repr(self))


# ---- building blocks ------------------------------------------------------------

# What HTTP allows in a header value (visible ASCII and spaces).
header_text = st.text(alphabet=string.printable.strip() + " ", max_size=80)
param_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=24
)
param_values = st.text(max_size=60)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
invalid_utf8 = st.sampled_from(
    [
        b"\xff",
        b"\xfe\xfe",
        b"\xc3\x28",
        b"\xa0\xa1",
        b"\xe2\x28\xa1",
        b"\xf0\x28\x8c\xbc",
        b"\xed\xa0\x80",
    ]
)


@st.composite
def bad_utf8_bytes(draw: st.DrawFn, prefix: bytes = b"") -> bytes:
    """Bytes that are not UTF-8: valid text with invalid sequences spliced in."""
    text = draw(st.text(max_size=40)).encode()
    cut = draw(st.integers(0, len(text)))
    return prefix + text[:cut] + draw(invalid_utf8) + text[cut:]


# ---- webhooks --------------------------------------------------------------------

WEBHOOK_REQUIRED = {
    "/api/twilio/webhook": ("CallSid", "AccountSid", "From", "To"),
    "/api/twilio/status": ("CallSid", "CallStatus"),
    "/api/twilio/dial-status": ("CallSid", "DialCallStatus"),
    "/api/twilio/recording-status": ("CallSid", "RecordingSid", "RecordingStatus"),
}
FORM = "application/x-www-form-urlencoded"


def twilio_params(path: str) -> dict[str, str]:
    """Well-formed fields of one webhook of a forwarded call, as Twilio sends them."""
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    hooks = [call.incoming(), *call.answered()]
    return next(dict(h.params) for h in hooks if h.path == path)


webhook_paths = st.sampled_from(sorted(WEBHOOK_REQUIRED))


@st.composite
def twilio_like_params(draw: st.DrawFn, path: str) -> dict[str, str]:
    """Twilio's fields for `path`, some changed, some added."""
    params = twilio_params(path)
    for name in draw(st.lists(st.sampled_from(sorted(params)), max_size=3, unique=True)):
        params[name] = draw(param_values)
    params.update(draw(st.dictionaries(param_names, param_values, max_size=4)))
    return params


@st.composite
def unsigned_or_forged_webhooks(draw: st.DrawFn, base: str, token: str) -> BadRequest:
    """Plausible webhooks whose X-Twilio-Signature is missing or does not fit."""
    path = draw(webhook_paths)
    params = draw(twilio_like_params(path))
    body = urlencode(params).encode()
    how = draw(st.sampled_from(["none", "garbage", "wrong-token", "wrong-url", "tampered"]))
    headers = {"Content-Type": FORM}
    if how == "garbage":
        headers["X-Twilio-Signature"] = draw(header_text)
    elif how == "wrong-token":
        headers["X-Twilio-Signature"] = sign(token + "x", base + path, params)
    elif how == "wrong-url":
        other = draw(st.sampled_from(["http://calls.example.com", base + "/", base + ":8443"]))
        headers["X-Twilio-Signature"] = sign(token, other + path, params)
    elif how == "tampered":
        headers["X-Twilio-Signature"] = sign(token, base + path, params)
        name = draw(st.sampled_from(sorted(params)))
        changed = {**params, name: params[name] + draw(st.text(min_size=1, max_size=8))}
        body = urlencode(changed).encode()
    return BadRequest(f"signature-{how}", "POST", path, body, headers, frozenset({403}))


@st.composite
def signed_but_incomplete_webhooks(draw: st.DrawFn, base: str, token: str) -> BadRequest:
    """Correctly signed webhooks lacking a field Twilio always sends (absent or empty)."""
    path = draw(webhook_paths)
    params = draw(twilio_like_params(path))
    for name in WEBHOOK_REQUIRED[path]:  # the mutations above must not remove them
        params.setdefault(name, "x")
        if not params[name]:
            params[name] = "x"
    dropped = draw(st.lists(st.sampled_from(WEBHOOK_REQUIRED[path]), min_size=1, unique=True))
    for name in dropped:
        if draw(st.booleans()):
            del params[name]
        else:
            params[name] = ""
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(token, base + path, params)}
    return BadRequest(
        "signed-incomplete", "POST", path, urlencode(params).encode(), headers, frozenset({400})
    )


@st.composite
def wrongly_typed_webhooks(draw: st.DrawFn, base: str, token: str) -> BadRequest:
    """Twilio's own (signed) fields sent as JSON, text, multipart or with no type at all."""
    path = draw(webhook_paths)
    params = twilio_params(path)
    kind = draw(st.sampled_from(["json", "text", "multipart", "none", "octets"]))
    headers = {"X-Twilio-Signature": sign(token, base + path, params)}
    if kind == "json":
        body = json.dumps(params).encode()
        headers["Content-Type"] = "application/json"
    elif kind == "text":
        body = urlencode(params).encode()
        headers["Content-Type"] = "text/plain"
    elif kind == "multipart":
        body = (
            b'--b\r\nContent-Disposition: form-data; name="CallSid"\r\n\r\n'
            + params["CallSid"].encode()
            + b"\r\n--b--\r\n"
        )
        headers["Content-Type"] = "multipart/form-data; boundary=b"
    elif kind == "octets":
        body = draw(st.binary(max_size=200))
        headers["Content-Type"] = "application/octet-stream"
    else:
        body = urlencode(params).encode()
    return BadRequest(f"media-type-{kind}", "POST", path, body, headers, frozenset({415}))


@st.composite
def badly_encoded_webhooks(draw: st.DrawFn, base: str, token: str) -> BadRequest:
    """Form bodies that are not UTF-8 or not form encoding, under any signature."""
    path = draw(webhook_paths)
    body = draw(
        st.one_of(
            bad_utf8_bytes(prefix=b"CallSid="),
            st.binary(max_size=300),
            st.text(max_size=100).map(lambda t: t.encode("utf-16")),
            st.sampled_from([b"%", b"%zz=1", b"=&=&", b"a=%ff%fe", b"&&&", b"CallSid"]),
        )
    )
    charset = draw(st.sampled_from(["", "; charset=utf-8", "; charset=latin-1", "; charset=x"]))
    headers = {"Content-Type": FORM + charset}
    if draw(st.booleans()):
        headers["X-Twilio-Signature"] = draw(header_text)
    return BadRequest("encoding", "POST", path, body, headers, frozenset({400, 403}))


@st.composite
def oversized_webhooks(draw: st.DrawFn, base: str, token: str) -> BadRequest:
    """Signed form bodies over the 64 KiB limit."""
    path = draw(webhook_paths)
    params = twilio_params(path)
    params[draw(st.sampled_from(["CallerName", "From", "Padding"]))] = "a" * draw(
        st.integers(OVERSIZED, OVERSIZED + 50_000)
    )
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(token, base + path, params)}
    return BadRequest(
        "oversized", "POST", path, urlencode(params).encode(), headers, frozenset({413})
    )


def wrong_method_webhooks() -> st.SearchStrategy[BadRequest]:
    return st.builds(
        lambda path, method: BadRequest("method", method, path, expect=frozenset({405})),
        webhook_paths,
        st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]),
    )


def bad_webhooks(base: str, token: str) -> st.SearchStrategy[BadRequest]:
    """Every kind of bad webhook but the oversized (drawn on their own: oversized_webhooks)."""
    return st.one_of(
        unsigned_or_forged_webhooks(base, token),
        signed_but_incomplete_webhooks(base, token),
        wrongly_typed_webhooks(base, token),
        badly_encoded_webhooks(base, token),
        wrong_method_webhooks(),
    )


# ---- the management API ---------------------------------------------------------

# The kind of value each known field takes; a value of another kind is refused.
STRING_FIELDS = (
    "name",
    "forwardTo",
    "phoneNumber",
    "timezone",
    "recordingDisclaimer",
    "campaign",
)
BOOL_FIELDS = ("recordingEnabled", "record", "deleteFromTwilio")
NUMBER_FIELDS = ("retentionDays", "monthlyRevenue", "valuePerConversion")
ALL_FIELDS = (*STRING_FIELDS, *BOOL_FIELDS, *NUMBER_FIELDS, "areaCode")

non_null_containers = st.one_of(
    st.lists(json_values, max_size=3), st.dictionaries(st.text(max_size=8), json_values, max_size=3)
)
numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
)


def wrong_value(name: str) -> st.SearchStrategy[Any]:
    """A JSON value that field `name` can never take (null is valid for some: never drawn)."""
    if name in STRING_FIELDS:
        return st.one_of(st.booleans(), numbers, non_null_containers)
    if name in BOOL_FIELDS:
        return st.one_of(numbers, st.text(max_size=10), non_null_containers)
    if name in NUMBER_FIELDS:
        return st.one_of(st.booleans(), st.text(max_size=10), non_null_containers)
    # areaCode: a 3-digit string or int; booleans, floats and containers never are.
    return st.one_of(st.booleans(), st.floats(allow_nan=False), non_null_containers)


@st.composite
def poisoned_objects(draw: st.DrawFn, fields: tuple[str, ...]) -> dict[str, Any]:
    """An object with at least one field of `fields` holding a value of the wrong kind."""
    poisoned = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    return {name: draw(wrong_value(name)) for name in poisoned}


@st.composite
def objects_with_unknown_field(draw: st.DrawFn) -> dict[str, Any]:
    extra = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in ALL_FIELDS))
    body: dict[str, Any] = draw(
        st.dictionaries(st.sampled_from(ALL_FIELDS), json_values, max_size=3)
    )
    body[extra] = draw(json_values)
    return body


def invalid_bodies(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    """Bodies a JSON-object endpoint taking `fields` must refuse, encoded as sent."""
    non_objects = st.one_of(json_scalars, st.lists(json_values, max_size=4)).map(
        lambda v: json.dumps(v).encode()
    )
    objects = st.one_of(poisoned_objects(fields), objects_with_unknown_field()).map(
        lambda v: json.dumps(v).encode()
    )
    broken = st.one_of(
        deeply_nested_bodies(),
        st.binary(max_size=200).filter(lambda b: not _is_json(b)),
        bad_utf8_bytes(prefix=b'{"name": "'),
        st.sampled_from([b"{", b'{"name": }', b"[1,", b"nul", b'{"a":1}{"b":2}', b"\xef\xbb\xbf"]),
    )
    return st.one_of(non_objects, objects, broken)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


JSON_MEDIA_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
    ]
)


def management_endpoints(client_id: str, number: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, fields) of every body-taking management route, on real objects."""
    client = f"/api/clients/{client_id}"
    client_fields = (
        "name",
        "forwardTo",
        "timezone",
        "recordingEnabled",
        "recordingDisclaimer",
        "retentionDays",
        "deleteFromTwilio",
        "monthlyRevenue",
        "valuePerConversion",
    )
    assignment = (
        "phoneNumber",
        "areaCode",
        "forwardTo",
        "record",
        "recordingDisclaimer",
        "campaign",
    )
    number_changes = ("forwardTo", "record", "recordingDisclaimer", "campaign")
    return [
        ("POST", "/api/clients", client_fields),
        ("PATCH", client, client_fields),
        ("PUT", client, client_fields),
        ("POST", f"{client}/numbers", assignment),
        ("PATCH", f"{client}/numbers/{number}", number_changes),
        ("PATCH", f"{client}/numbers/{number.replace('+', '%2B')}", number_changes),
        ("POST", f"{client}/api-keys", ("name",)),
    ]


@st.composite
def malformed_admin_requests(
    draw: st.DrawFn, client_id: str, number: str, admin_token: str
) -> BadRequest:
    """The admin's own token, and a body the route can only refuse."""
    method, path, fields = draw(st.sampled_from(management_endpoints(client_id, number)))
    headers = {"Authorization": f"Bearer {admin_token}"}
    media = draw(JSON_MEDIA_TYPES)
    if media:
        headers["Content-Type"] = media
    body = draw(invalid_bodies(fields))
    if path.endswith("/api-keys") and not body:
        body = b"[]"  # an empty body is a valid request for a key without a name
    return BadRequest("admin-malformed", method, path, body, headers)


@st.composite
def oversized_admin_requests(
    draw: st.DrawFn, client_id: str, number: str, admin_token: str
) -> BadRequest:
    method, path, _ = draw(st.sampled_from(management_endpoints(client_id, number)))
    body = json.dumps({"name": "x" * draw(st.integers(OVERSIZED, OVERSIZED + 50_000))}).encode()
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    return BadRequest("admin-oversized", method, path, body, headers, frozenset({413}))


@st.composite
def unauthenticated_requests(
    draw: st.DrawFn, client_id: str, number: str, admin_token: str
) -> BadRequest:
    """Any management route, even with a valid body, without the admin's token."""
    client = f"/api/clients/{client_id}"
    method, path = draw(
        st.sampled_from(
            [
                ("GET", "/api/clients"),
                ("POST", "/api/clients"),
                ("GET", client),
                ("PATCH", client),
                ("PUT", client),
                ("DELETE", client),
                ("POST", f"{client}/numbers"),
                ("DELETE", f"{client}/numbers/{number}"),
                ("POST", f"{client}/api-keys"),
                ("GET", "/api/audit"),
                ("POST", "/api/twilio/purchase-number"),
                ("POST", "/api/twilio/make-call"),
            ]
        )
    )
    valid = {"name": "Forged Co", "forwardTo": "+14155550000", "phoneNumber": "+14155550111"}
    body = json.dumps(draw(st.sampled_from([valid, {}, {"name": "x"}]))).encode()
    authorization = draw(
        st.one_of(
            st.none(),
            st.just("Bearer "),
            st.just(f"Basic {admin_token}"),
            st.just(f"Bearer {admin_token}x"),
            st.just(f"Bearer {admin_token[:-1]}"),
            header_text.map(lambda t: f"Bearer {t}"),
            header_text.map(lambda t: f"Bearer sbk_{t}"),
            header_text,
        )
    )
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return BadRequest("unauthenticated", method, path, body, headers, frozenset({401, 403}))


def bad_management_requests(
    client_id: str, number: str, admin_token: str
) -> st.SearchStrategy[BadRequest]:
    """Malformed and unauthenticated calls (oversized ones: oversized_admin_requests)."""
    return st.one_of(
        malformed_admin_requests(client_id, number, admin_token),
        unauthenticated_requests(client_id, number, admin_token),
    )


# ---- crafted shapes: deep nesting, odd Range values, forged cursors ---------------

DEEP = 50_000  # far past any limit, and past Python's recursion limit (1,000)


@st.composite
def deeply_nested_bodies(draw: st.DrawFn) -> bytes:
    """JSON (or its start) nested far deeper than any real body: `[[[[`, `{"a":{"a":`, ..."""
    depth = draw(st.sampled_from([33, 100, 1_000, DEEP]))
    opener = draw(st.sampled_from(["[", "{", '{"a":', '{"name":[', '[{"x":']))
    closed = draw(st.booleans())
    closer = {"[": "]", "{": "}", '{"a":': "}", '{"name":[': "]}", '[{"x":': "}]"}[opener]
    inner = "1" if opener not in ("{",) else '"k":1'
    # Within the body limit (a bigger body is a 413 before anyone parses it),
    # and still thousands of levels: past Python's recursion limit.
    depth = min(depth, (MAX_BODY_BYTES - 200) // (len(opener) + len(closer)))
    text = opener * depth + (inner + closer * depth if closed else "")
    # An object around it, so routes that read fields get as far as they can.
    if draw(st.booleans()):
        text = '{"name": "x", "callSid": "CA1", "phoneNumber": "+14155550100", "deep": ' + text
        text += "}" if closed else ""
    return text.encode()


# Digits Python's int() and str.isdigit() accept that are not ASCII: superscripts,
# Arabic-Indic, Devanagari, fullwidth and mathematical digits.
UNICODE_DIGITS = "²³¹٠١٢٣٤٥٦٧٨٩०१२३４５６７８９𝟎𝟏𝟐"


def range_positions() -> st.SearchStrategy[str]:
    """What may stand where a byte position goes: odd digits, huge numbers, junk."""
    return st.one_of(
        st.text(alphabet=UNICODE_DIGITS + "0123456789", min_size=1, max_size=6),
        st.integers(min_value=10**18, max_value=10**40).map(str),
        st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
        st.integers(min_value=1, max_value=100).map(lambda n: "0" * n + "1"),
        st.integers(min_value=0, max_value=5000).map(str),
        st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=8),
        st.just(""),
    )


@st.composite
def crafted_ranges(draw: st.DrawFn) -> str:
    """A Range header value built to trip a parser: `bytes=²-`, `bytes=٣-5`, `bytes=9999...-`."""
    unit = draw(st.sampled_from(["bytes", "Bytes", "BYTES", "bytes ", "items", ""]))
    spans = draw(
        st.lists(
            st.tuples(range_positions(), st.sampled_from(["-", "–", "", "--"]), range_positions()),
            min_size=1,
            max_size=3,
        )
    )
    joined = ",".join(first + dash + last for first, dash, last in spans)
    return f"{unit}={joined}"


def base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@st.composite
def crafted_cursors(draw: st.DrawFn) -> str:
    """Call-list cursors the API never issued: base64 of deep JSON, of the wrong types, or none."""
    kind = draw(st.sampled_from(["deep", "value", "raw", "text", "huge"]))
    if kind == "deep":
        return base64url(draw(deeply_nested_bodies()))
    if kind == "value":
        return base64url(json.dumps(draw(json_values.filter(_not_a_cursor))).encode())
    if kind == "raw":
        return base64url(draw(st.binary(min_size=1, max_size=64)))
    if kind == "huge":
        number = draw(st.integers(min_value=2**63, max_value=2**200))
        return base64url(f'[{number}, "CA1"]'.encode())
    return draw(st.text(min_size=1, max_size=80))


def _not_a_cursor(value: Any) -> bool:
    """False for what an issued cursor holds: [startedAt ms, CallSid]."""
    return not (
        isinstance(value, list)
        and len(value) == 2
        and type(value[0]) is int
        and isinstance(value[1], str)
    )


# Query parameters of analytics' reads, and values built to trip their parsers.
ANALYTICS_READS = (
    "/api/calls",
    "/api/analytics/summary",
    "/api/analytics/timeseries",
    "/api/analytics/durations",
    "/api/analytics/peak-hours",
    "/api/analytics/top-callers",
    "/api/analytics/geography",
    "/api/analytics/lead-quality",
    "/api/analytics/campaigns",
    "/api/analytics/missed-calls",
    "/api/analytics/audit",
)
ANALYTICS_PARAMETERS = (
    "from",
    "to",
    "tz",
    "interval",
    "limit",
    "minDuration",
    "campaign",
    "status",
    "direction",
    "clientId",
    "caller",
    "cursor",
    "format",
    "before",
    "action",
)


def crafted_query_values() -> st.SearchStrategy[str]:
    return st.one_of(
        range_positions(),
        crafted_cursors(),
        st.sampled_from(
            [
                "9999-12-31T23:59:59Z",
                "0001-01-01",
                "2024-05-01T00:00:00+99:00",
                "../../etc/passwd",
                "/etc/localtime",
                "UTC\x00",
                "Europe/" + "A" * 300,
                "-1",
                "1e9",
                "csv",
                "+14155550100",
                "=HYPERLINK(1)",
            ]
        ),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    )


@st.composite
def crafted_analytics_reads(draw: st.DrawFn) -> str:
    """A path of analytics' read API with parameters whose values are built to trip it."""
    path = draw(st.sampled_from(ANALYTICS_READS))
    params = draw(
        st.dictionaries(st.sampled_from(ANALYTICS_PARAMETERS), crafted_query_values(), max_size=4)
    )
    return path + "?" + urlencode(params)
