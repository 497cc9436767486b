"""A client's notification settings: who hears of a missed call, who gets reports (pure).

What `PUT /api/clients/<id>/notifications` stores and `client.settings-changed`
carries to the reporting service: missed-call alerts by email, SMS and a
signed webhook, held during quiet hours (in the client's time zone), and
weekly and monthly reports by email. A client without settings gets no alerts
and no reports. `Notifications.parse` either yields settings the store can
write as is, or raises `ApiError(400)` naming the field and the reason.

A webhook's signing secret is made here when a webhook is created or its URL
changes, shown once in that PUT's answer and never by GET. SMS recipients
pass router's `DialPolicy` (a text to a premium number costs like a call).
Outside development a webhook must be https and must not resolve to a
private, loopback or link-local address, so a client cannot make the
reporting service call into the deployment's own network; the resolver is
passed in so the rule is tested without DNS.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from services.router.dialing import DialPolicy
from services.router.directory import invalid, parse_e164
from switchboard.http import ApiError

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_RECIPIENTS = 10
MAX_EMAIL = 254
MAX_URL = 2000
CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# A pragmatic address check (RFC 5321 sizes, a dotted domain, no spaces or
# quoting): an address mail servers would refuse is a 400 now, not a bounce later.
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)

# host -> the addresses it resolves to (socket.getaddrinfo in production).
Resolver = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """Every address `host` resolves to; an empty list when it does not resolve."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found})


@dataclass(frozen=True)
class Webhook:
    """Where alerts are POSTed, and the secret that signs them (None once forgotten)."""

    url: str
    secret: str | None = None

    def to_json(self, with_secret: bool = False) -> dict[str, Any]:
        shown: dict[str, Any] = {"url": self.url}
        if with_secret and self.secret is not None:
            shown["secret"] = self.secret
        return shown


@dataclass(frozen=True)
class QuietHours:
    """Alerts wait from `start` until `end` (HH:MM, client's zone; may span midnight)."""

    start: str
    end: str

    def to_json(self) -> dict[str, str]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True)
class MissedCallAlerts:
    email: tuple[str, ...] = ()
    sms: tuple[str, ...] = ()
    webhook: Webhook | None = None
    quiet_hours: QuietHours | None = None

    def to_json(self, with_secret: bool = False) -> dict[str, Any]:
        return {
            "email": list(self.email),
            "sms": list(self.sms),
            "webhook": self.webhook.to_json(with_secret) if self.webhook else None,
            "quietHours": self.quiet_hours.to_json() if self.quiet_hours else None,
        }


@dataclass(frozen=True)
class Reports:
    weekly: bool = False
    monthly: bool = False
    email: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"weekly": self.weekly, "monthly": self.monthly, "email": list(self.email)}


@dataclass(frozen=True)
class Notifications:
    """Every part is optional; the defaults send nothing (alerts and reports off)."""

    missed_call: MissedCallAlerts = field(default_factory=MissedCallAlerts)
    reports: Reports = field(default_factory=Reports)

    @classmethod
    def parse(cls, body: object, rules: WebhookRules, policy: DialPolicy) -> Notifications:
        """The settings in a request body (no secret yet), or ApiError(400) naming the field."""
        values = _object(body, "", ("missedCall", "reports"))
        return cls(
            missed_call=_missed_call(values.get("missedCall"), rules, policy),
            reports=_reports(values.get("reports")),
        )

    @classmethod
    def from_json(cls, stored: dict[str, Any], secret: str | None) -> Notifications:
        """Settings as stored: valid when written, so neither DNS nor the dial policy is asked."""
        parsed = cls.parse(stored, WebhookRules(development=True), _ANY_COUNTRY)
        return parsed.with_secret(secret)

    @property
    def secret(self) -> str | None:
        webhook = self.missed_call.webhook
        return webhook.secret if webhook else None

    @property
    def alerts_on(self) -> bool:
        alerts = self.missed_call
        return bool(alerts.email or alerts.sms or alerts.webhook)

    def with_secret(self, secret: str | None) -> Notifications:
        webhook = self.missed_call.webhook
        if webhook is None:
            return self
        return replace(
            self, missed_call=replace(self.missed_call, webhook=replace(webhook, secret=secret))
        )

    def keeping_secret_of(self, current: Notifications | None) -> tuple[Notifications, bool]:
        """These settings with their webhook's secret: the current one for the same URL, else
        a new one; and whether the secret is new (then it is shown once)."""
        webhook = self.missed_call.webhook
        if webhook is None:
            return self, False
        before = current.missed_call.webhook if current else None
        if before is not None and before.url == webhook.url and before.secret:
            return self.with_secret(before.secret), False
        return self.with_secret(new_secret()), True

    def to_json(self, with_secret: bool = False) -> dict[str, Any]:
        """As the API shows them (no secret) or as the settings-changed event carries them."""
        return {
            "missedCall": self.missed_call.to_json(with_secret),
            "reports": self.reports.to_json(),
        }


@dataclass(frozen=True)
class WebhookRules:
    """Which webhook URLs are allowed: in development also http and private addresses."""

    development: bool = False
    resolver: Resolver = resolve

    def refusal(self, url: str) -> str | None:
        """Why `url` may not receive alerts, or None when it may."""
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError as err:
            return f"is not a URL ({err})"
        if not port_ok:
            return "has port 0"
        if parts.scheme not in ("https", "http") or not parts.hostname:
            return "must be an https URL such as https://crm.example/hooks/calls"
        if parts.scheme == "http" and not self.development:
            return "must be https (http only in development)"
        if parts.username is not None or parts.password is not None:
            return "must not carry a user name or password"
        if self.development:
            return None
        host = parts.hostname
        addresses = [host] if _is_address(host) else self.resolver(host)
        if not addresses:
            return f"has a host that does not resolve: {host}"
        for address in addresses:
            if not _is_public(address):
                return (
                    f"resolves to a private, loopback or link-local address ({address}),"
                    " which alerts may not be sent to"
                )
        return None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local, shared (CGNAT),
    # documentation and reserved ranges alike; multicast is no web server.
    return ip.is_global and not ip.is_multicast


class _AnyCountry(DialPolicy):
    def refusal(self, number: str) -> str | None:
        return None


_ANY_COUNTRY = _AnyCountry()


# ---- parts: raw JSON value -> value, or ApiError(400) naming the field


def _object(value: object, name: str, known: Iterable[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(name or "the body", "must be a JSON object")
    unknown = sorted(set(value) - set(known))
    if unknown:
        where = f"{name}." if name else ""
        raise ApiError(
            400, "unknown_field", f"unknown field(s): {', '.join(where + u for u in unknown)}"
        )
    # null means "not given".
    return {k: v for k, v in value.items() if v is not None}


def _missed_call(value: object, rules: WebhookRules, policy: DialPolicy) -> MissedCallAlerts:
    if value is None:
        return MissedCallAlerts()
    values = _object(value, "missedCall", ("email", "sms", "webhook", "quietHours"))
    return MissedCallAlerts(
        email=_emails(values.get("email"), "missedCall.email"),
        sms=_phones(values.get("sms"), "missedCall.sms", policy),
        webhook=_webhook(values.get("webhook"), rules),
        quiet_hours=_quiet_hours(values.get("quietHours")),
    )


def _reports(value: object) -> Reports:
    if value is None:
        return Reports()
    values = _object(value, "reports", ("weekly", "monthly", "email"))
    reports = Reports(
        weekly=_bool(values.get("weekly", False), "reports.weekly"),
        monthly=_bool(values.get("monthly", False), "reports.monthly"),
        email=_emails(values.get("email"), "reports.email"),
    )
    if (reports.weekly or reports.monthly) and not reports.email:
        raise invalid("reports.email", "must name at least one address when reports are on")
    return reports


def _list(value: object, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(name, "must be a list")
    if len(value) > MAX_RECIPIENTS:
        raise invalid(name, f"must hold at most {MAX_RECIPIENTS} entries, got {len(value)}")
    return value


def _emails(value: object, name: str) -> tuple[str, ...]:
    found: list[str] = []
    for i, raw in enumerate(_list(value, name)):
        where = f"{name}[{i}]"
        if not isinstance(raw, str):
            raise invalid(where, "must be an email address")
        address = raw.strip()
        if len(address) > MAX_EMAIL or not EMAIL.fullmatch(address):
            raise invalid(where, f"is not an email address: {raw!r}")
        if address.lower() in (a.lower() for a in found):
            raise invalid(where, f"{address} is listed twice")
        found.append(address)
    return tuple(found)


def _phones(value: object, name: str, policy: DialPolicy) -> tuple[str, ...]:
    found: list[str] = []
    for i, raw in enumerate(_list(value, name)):
        where = f"{name}[{i}]"
        number = parse_e164(where, raw)
        policy.check(where, number)
        if number in found:
            raise invalid(where, f"{number} is listed twice")
        found.append(number)
    return tuple(found)


def _webhook(value: object, rules: WebhookRules) -> Webhook | None:
    if value is None:
        return None
    if isinstance(value, dict) and "secret" in value:
        raise invalid(
            "missedCall.webhook.secret",
            "is made by Switchboard and shown once; it cannot be set (a new url gets a new one)",
        )
    values = _object(value, "missedCall.webhook", ("url",))
    url = values.get("url")
    if not isinstance(url, str) or not url.strip():
        raise invalid("missedCall.webhook.url", "is required (an https URL)")
    url = url.strip()
    if len(url) > MAX_URL:
        raise invalid("missedCall.webhook.url", f"must be at most {MAX_URL} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 for c in url):
        raise invalid("missedCall.webhook.url", "must be an ASCII URL without spaces")
    refusal = rules.refusal(url)
    if refusal is not None:
        raise invalid("missedCall.webhook.url", refusal)
    return Webhook(url)


def _quiet_hours(value: object) -> QuietHours | None:
    if value is None:
        return None
    values = _object(value, "missedCall.quietHours", ("start", "end"))
    times: dict[str, str] = {}
    for part in ("start", "end"):
        raw = values.get(part)
        if not isinstance(raw, str) or not CLOCK.fullmatch(raw):
            raise invalid(
                f"missedCall.quietHours.{part}",
                f"must be a time from 00:00 to 23:59 (HH:MM), got {raw!r}",
            )
        times[part] = raw
    if times["start"] == times["end"]:
        raise invalid("missedCall.quietHours", "must end at another time than it starts")
    return QuietHours(times["start"], times["end"])


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, "must be true or false")
    return value
