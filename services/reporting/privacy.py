"""A caller's export (GDPR article 15): what reporting holds that names them, for router.

Router's `GET /api/privacy/callers/<number>` asks `GET /internal/privacy/callers/<number>
?token=<token>` here with the admin token. The answer lists the kept missed-call
alerts naming the caller (with where each was delivered), the text-back ledger's
texts to them and their opt-outs, and the stored client reports whose figures name
them. A caller already erased is found under their privacy token, which replaced
the number in every one of these places. Router audits the export; reporting has
no audit table and logs it, under the token, never the number.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, request
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.reporting.runtime import Runtime
from switchboard.auth import authenticate
from switchboard.http import ApiError
from switchboard.privacy import E164, TOKEN_PREFIX

log = logging.getLogger(__name__)
_TOKEN = re.compile(rf"^{re.escape(TOKEN_PREFIX)}[0-9a-f]{{32}}$")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class CallerRecords:
    """The rows of reporting's PostgreSQL that name one caller, by number or by token."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def export(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Everything naming any of `names` (the number, and its token when known)."""
        # The JSON documents hold a number or token only as a whole string value.
        quoted = [orjson.dumps(name).decode() for name in names]
        with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            alerts = cur.execute(
                "SELECT call_sid, event, published_at FROM reporting.alerts"
                " WHERE EXISTS (SELECT 1 FROM unnest(%s::text[]) q"
                "  WHERE strpos(event::text, q) > 0) ORDER BY created_at",
                (quoted,),
            ).fetchall()
            deliveries = cur.execute(
                "SELECT call_sid, channel, status, delivered_at FROM reporting.deliveries"
                " WHERE call_sid = ANY(%s) ORDER BY call_sid, channel, recipient",
                ([row["call_sid"] for row in alerts],),
            ).fetchall()
            texts = cur.execute(
                "SELECT call_sid, phone_number, client_id, decided_at, status, reason, body,"
                " message_sid, message_status, sent_at, error_code"
                " FROM reporting.textback_calls WHERE caller = ANY(%s) ORDER BY decided_at",
                (names,),
            ).fetchall()
            opt_outs = cur.execute(
                "SELECT phone_number, opted_out_at FROM reporting.textback_opt_outs"
                " WHERE caller = ANY(%s) ORDER BY opted_out_at",
                (names,),
            ).fetchall()
            reports = cur.execute(
                "SELECT id, client_id, period, period_first, period_last FROM reporting.reports"
                " WHERE figures IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(%s::text[]) q"
                "  WHERE strpos(figures::text, q) > 0) ORDER BY period_first, id",
                (quoted,),
            ).fetchall()
        delivered: dict[str, list[dict[str, Any]]] = {}
        for row in deliveries:
            delivered.setdefault(row["call_sid"], []).append(
                {
                    "channel": row["channel"],
                    "status": row["status"],
                    "deliveredAt": _iso(row["delivered_at"]),
                }
            )
        return {
            "alerts": [
                {
                    **row["event"].get("data", {}),
                    "alertId": row["event"].get("id"),
                    "publishedAt": _iso(row["published_at"]),
                    "deliveries": delivered.get(row["call_sid"], []),
                }
                for row in alerts
            ],
            "texts": [
                {
                    "callSid": row["call_sid"],
                    "from": row["phone_number"],
                    "clientId": row["client_id"],
                    "decidedAt": _iso(row["decided_at"]),
                    "status": row["status"],
                    "reason": row["reason"],
                    "body": row["body"],
                    "messageSid": row["message_sid"],
                    "messageStatus": row["message_status"],
                    "sentAt": _iso(row["sent_at"]),
                    "errorCode": row["error_code"],
                }
                for row in texts
            ],
            "optOuts": [
                {"phoneNumber": row["phone_number"], "optedOutAt": _iso(row["opted_out_at"])}
                for row in opt_outs
            ],
            "reports": [
                {
                    "id": str(row["id"]),
                    "clientId": row["client_id"],
                    "period": row["period"],
                    "periodFirst": row["period_first"].isoformat(),
                    "periodLast": row["period_last"].isoformat(),
                }
                for row in reports
            ],
        }


def blueprint(runtime: Runtime) -> Blueprint:
    api = Blueprint("reporting_privacy", __name__, url_prefix="/internal/privacy")
    records = CallerRecords(runtime.store.pool)

    @api.get("/callers/<number>")
    def export_caller(number: str) -> Response:
        principal = authenticate(runtime.config.admin_token)
        if not principal.is_admin:
            raise ApiError(403, "forbidden", "a caller's data across clients is for the admin")
        if not E164.match(number):
            raise ApiError(400, "invalid_number", "the number must be E.164 (+...)")
        token = request.args.get("token") or None
        if token is not None and not _TOKEN.match(token):
            raise ApiError(400, "invalid_token", f"token must be {TOKEN_PREFIX}<32 hex digits>")
        found = records.export([number] if token is None else [number, token])
        log.info(
            "caller export for %s: %s",
            token or "a caller without token",
            ", ".join(f"{len(rows)} {name}" for name, rows in found.items()),
        )
        return jsonify(found)

    return api
