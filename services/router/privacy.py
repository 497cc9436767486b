"""A caller's erasure and export across every service (GDPR articles 17 and 15).

Router owns the public endpoints, `/api/privacy/callers/<number>`, admin only:

- `DELETE` erases the number everywhere it is kept. Router records the request
  (`caller_erasures`, keyed by the number's token, an HMAC under
  PRIVACY_TOKEN_SECRET) and rewrites its own audit details, then asks the
  services whose copies can be erased at once over HTTP (ingress's spool,
  recordings), and publishes `caller.erased` for the rest (analytics, and
  whatever listens later). The event goes out twice on the compacted
  client-events topic under one key: with the number, then without it, so
  compaction keeps only the number-less version. The answer lists each store
  with its status: `done`, `pending` (it acts on the event) or `failed`
  (the request is recorded, `complete` is false; repeating the DELETE is
  harmless and finishes the job).
- `GET` returns what is held about the caller: the calls (from analytics),
  the recordings with fresh signed links (from recordings), and from
  reporting the missed-call alerts naming them, the text-back texts sent to
  them, their opt-outs and the client reports whose figures name them;
  `complete` is false, and `unavailable` says why, when a service could not
  be asked.

Every step is audited, under the token, never the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from flask import Blueprint, Response, g, jsonify
from psycopg.types.json import Jsonb

from services.router.audit import AuditRecord
from services.router.management import Management, admin_only
from services.router.outbox import OutboxRelay
from services.router.store import Store
from switchboard.auth import Principal, authenticate
from switchboard.events import Event
from switchboard.http import ApiError
from switchboard.kafka import Topics
from switchboard.privacy import E164, caller_token

ERASED_EVENT = "caller.erased"
_MAX_CALLS = 1000


def caller_erased(number: str | None, token: str, requested_by: str) -> Event:
    """The event of an erasure; `number` None for the version that supersedes the first."""
    return Event(
        type=ERASED_EVENT,
        source="router",
        data={"token": token, "number": number, "requestedBy": requested_by},
    )


def erased_key(token: str) -> str:
    """The compacted topic's key: both versions of one erasure share it."""
    return f"caller:{token}"


@dataclass(frozen=True)
class Services:
    """Where router asks the other services, with the admin token."""

    admin_token: str
    ingress_url: str
    analytics_url: str
    recordings_url: str
    reporting_url: str
    timeout: float

    def call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON answer of another service; raises ServiceFailed with why not."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        try:
            reply = requests.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            raise ServiceFailed(f"unreachable: {type(err).__name__}") from err
        if reply.status_code >= 300:
            raise ServiceFailed(f"answered {reply.status_code}")
        try:
            body = reply.json()
        except ValueError as err:
            raise ServiceFailed("answered no JSON") from err
        if not isinstance(body, dict):
            raise ServiceFailed("answered no JSON object")
        return body


class ServiceFailed(Exception):
    """Another service did not do its part of an erasure or export."""


class Privacy:
    """Erasure and export of one caller's data, across the services."""

    def __init__(
        self, store: Store, relay: OutboxRelay, topics: Topics, secret: str, services: Services
    ) -> None:
        self._store = store
        self._relay = relay
        self._topics = topics
        self._secret = secret
        self._services = services

    def erase(self, who: Principal, number: str) -> dict[str, Any]:
        admin_only(who, "erase a caller")
        token = caller_token(self._secret, checked(number))
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO caller_erasures (token, requested_by) VALUES (%s, %s)"
                " ON CONFLICT (token) DO UPDATE SET requested_by = EXCLUDED.requested_by,"
                " requested_at = now()",
                (token, who.name),
            )
            # Router keeps no caller numbers but in audit details a client may have written.
            audit_rows = tx.execute(
                "UPDATE audit_log SET details = replace(details::text, %s, %s)::jsonb"
                " WHERE strpos(details::text, %s) > 0",
                (number, token, number),
            )
            tx.audit(
                who.name,
                AuditRecord("caller.erasure-requested", "caller", token, None, {}),
            )
            topic, key = self._topics.client_events, erased_key(token)
            tx.enqueue(topic, key, caller_erased(number, token, who.name))
            tx.enqueue(topic, key, caller_erased(None, token, who.name))
        self._relay.kick()

        stores: dict[str, dict[str, Any]] = {
            "router": {"status": "done", "auditEntriesRewritten": audit_rows},
            "ingressSpool": self._ask(
                "POST",
                f"{self._services.ingress_url}/internal/privacy/spool-erasure",
                lambda body: {"rewritten": body.get("rewritten", 0)},
                json={"number": number, "token": token},
            ),
            "recordings": self._ask(
                "DELETE",
                f"{self._services.recordings_url}/internal/privacy/callers/{quote(number)}",
                lambda body: {"deleted": body.get("deleted", []), "calls": body.get("calls", 0)},
                params={"token": token},
            ),
            "analytics": {"status": "pending", "via": f"{ERASED_EVENT} event"},
            "reporting": {"status": "pending", "via": f"{ERASED_EVENT} event"},
        }
        with self._store.transaction() as tx:
            tx.execute(
                "UPDATE caller_erasures SET stores = %s WHERE token = %s",
                (Jsonb(stores), token),
            )
            tx.audit(
                who.name,
                AuditRecord("caller.erased", "caller", token, None, {"stores": stores}),
            )
        failed = sorted(name for name, s in stores.items() if s["status"] == "failed")
        return {"token": token, "complete": not failed, "failed": failed, "stores": stores}

    def export(self, who: Principal, number: str) -> dict[str, Any]:
        admin_only(who, "export a caller's data")
        token = caller_token(self._secret, checked(number))
        services = self._services
        unavailable: dict[str, str] = {}

        def asked(service: str, url: str, **params: Any) -> dict[str, Any]:
            try:
                return services.call("GET", url, params=params)
            except ServiceFailed as err:
                unavailable[service] = str(err)
                return {}

        def held(service: str, key: str, url: str, **params: Any) -> list[Any]:
            return listed(asked(service, url, **params), key)

        calls = held(
            "analytics",
            "calls",
            f"{services.analytics_url}/api/calls",
            caller=number,
            limit=_MAX_CALLS,
        )
        recordings = held(
            "recordings",
            "recordings",
            f"{services.recordings_url}/internal/privacy/callers/{quote(number)}",
            token=token,
        )
        reporting = asked(
            "reporting",
            f"{services.reporting_url}/internal/privacy/callers/{quote(number)}",
            token=token,
        )
        kept = {key: listed(reporting, key) for key in ("alerts", "texts", "optOuts", "reports")}
        with self._store.transaction() as tx:
            tx.audit(
                who.name,
                AuditRecord(
                    "caller.exported",
                    "caller",
                    token,
                    None,
                    {
                        "calls": len(calls),
                        "recordings": len(recordings),
                        **{key: len(rows) for key, rows in kept.items()},
                        "missing": unavailable,
                    },
                ),
            )
        return {
            "number": number,
            # False when a service could not be asked: `unavailable` says which and why.
            "complete": not unavailable,
            "unavailable": unavailable,
            "calls": calls,
            "recordings": recordings,
            **kept,
        }

    def _ask(self, method: str, url: str, summary: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            body = self._services.call(method, url, **kwargs)
        except ServiceFailed as err:
            return {"status": "failed", "reason": str(err)}
        return {"status": "done", **summary(body)}


def listed(body: dict[str, Any], key: str) -> list[Any]:
    found = body.get(key, [])
    return found if isinstance(found, list) else []


def checked(number: str) -> str:
    if not E164.match(number):
        raise ApiError(400, "invalid_number", f"not an E.164 phone number: {number!r}")
    return number


def privacy_api(privacy: Privacy, management: Management, admin_token: str) -> Blueprint:
    api = Blueprint("router_privacy", __name__, url_prefix="/api/privacy")

    @api.before_request
    def _authenticate() -> None:
        g.principal = authenticate(admin_token, management.principal_for_key)

    @api.delete("/callers/<number>")
    def erase_caller(number: str) -> tuple[Response, int]:
        # Accepted even when a service could not be reached: the request is recorded
        # and announced; `complete` is false and repeating it finishes the job.
        return jsonify(privacy.erase(g.principal, number)), 202

    @api.get("/callers/<number>")
    def export_caller(number: str) -> Response:
        return jsonify(privacy.export(g.principal, number))

    return api
