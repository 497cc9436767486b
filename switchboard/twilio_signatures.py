"""Checking X-Twilio-Signature against the public URL Twilio requested.

Twilio signs the URL it called, which behind the edge proxy is not the URL
this process sees. The public scheme and host come from the configured public
base (TWILIO_WEBHOOK_URL / PUBLIC_BASE_URL) when set, otherwise from the
proxy's X-Forwarded-Proto / X-Forwarded-Host, otherwise from the request
itself. The path and query string are used exactly as received: re-encoding
them would break the signature. The HMAC itself is twilio's RequestValidator.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import quote, urlparse

from flask import Request
from twilio.request_validator import RequestValidator, add_port, compare, remove_port
from werkzeug.datastructures import MultiDict


def public_url(request: Request, public_base: str | None) -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        raw = quote(request.path)
        query = request.environ.get("QUERY_STRING", "")
        if query:
            raw += "?" + query
    if raw.startswith("http://") or raw.startswith("https://"):
        return raw  # an absolute request-target already names the public URL
    return base_url(request, public_base) + raw


def base_url(request: Request, configured: str | None) -> str:
    """The public base URL Twilio reaches us at: the configured one, else the proxy's headers."""
    if configured:
        return configured.rstrip("/")
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    scheme = proto or request.scheme
    return f"{scheme}://{host or request.host}"


class SignatureChecker:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def is_valid(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        """Whether Twilio signed this URL and form (the URL with or without its port).

        As RequestValidator.validate, which signs both forms of the URL every
        time; the URL as it was requested is tried first, so a genuine
        webhook costs one signature instead of two.
        """
        if not signature:
            return False
        parsed = urlparse(url)
        values = _Values(form)
        candidates = dict.fromkeys((url, remove_port(parsed), add_port(parsed)))  # once each
        return any(
            compare(self._validator.compute_signature(candidate, values), signature)
            for candidate in candidates
        )


class _Values(Mapping[str, str]):
    """The form as RequestValidator reads it first (`getall`: every value of a name).

    Handed werkzeug's MultiDict (or a dict), the validator finds the values
    of each field only after one AttributeError or two.
    """

    def __init__(self, form: Mapping[str, str]) -> None:
        self._form = form
        self._all = form.getlist if isinstance(form, MultiDict) else lambda name: [form[name]]

    def getall(self, name: str) -> list[str]:
        return list(self._all(name))

    def __getitem__(self, name: str) -> str:
        return self._form[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def __len__(self) -> int:
        return len(self._form)
