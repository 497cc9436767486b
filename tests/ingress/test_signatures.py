"""The public URL ingress rebuilds is the one Twilio signed."""

from __future__ import annotations

from flask import Flask, request
from twilio.request_validator import RequestValidator

from switchboard.twilio_signatures import SignatureChecker, public_url

DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_documented_vector_is_accepted() -> None:
    checker = SignatureChecker("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert checker.is_valid(url, DOC_PARAMS, DOC_SIGNATURE)
    assert checker.is_valid(
        "https://mycompany.com:443/myapp.php?foo=1&bar=2", DOC_PARAMS, DOC_SIGNATURE
    )


def test_a_signature_made_with_the_port_is_accepted_without_it() -> None:
    signed = RequestValidator("12345").compute_signature(
        "https://mycompany.com:443/myapp.php?foo=1", DOC_PARAMS
    )
    checker = SignatureChecker("12345")
    assert checker.is_valid("https://mycompany.com/myapp.php?foo=1", DOC_PARAMS, signed)
    assert checker.is_valid("https://mycompany.com:443/myapp.php?foo=1", DOC_PARAMS, signed)
    assert not checker.is_valid("https://mycompany.com:8443/myapp.php?foo=1", DOC_PARAMS, signed)


def test_changed_param_or_missing_signature_is_rejected() -> None:
    checker = SignatureChecker("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert not checker.is_valid(url, {**DOC_PARAMS, "To": "+18005550000"}, DOC_SIGNATURE)
    assert not checker.is_valid(url, DOC_PARAMS, None)
    assert not checker.is_valid(url, DOC_PARAMS, "")


def _url_seen(path: str, headers: dict[str, str], base: str | None) -> str:
    app = Flask(__name__)
    with app.test_request_context(path, base_url="http://127.0.0.1:8081", headers=headers):
        return public_url(request, base)


def test_forwarded_proto_and_host_from_the_proxy_are_honoured() -> None:
    url = _url_seen(
        "/api/twilio/webhook?foo=1&bar=2",
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "calls.example.com"},
        None,
    )
    assert url == "https://calls.example.com/api/twilio/webhook?foo=1&bar=2"


def test_configured_public_base_wins_over_headers() -> None:
    url = _url_seen(
        "/api/twilio/status",
        {"X-Forwarded-Host": "internal:8080"},
        "https://calls.example.com/prefix",
    )
    assert url == "https://calls.example.com/prefix/api/twilio/status"


def test_query_string_is_kept_exactly_as_received() -> None:
    url = _url_seen("/api/twilio/webhook?b=2&a=%2B1", {}, None)
    assert url == "http://127.0.0.1:8081/api/twilio/webhook?b=2&a=%2B1"
