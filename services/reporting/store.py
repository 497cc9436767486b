"""The missed-call alerts' PostgreSQL (schema `reporting`): alerts waiting to go, and deliveries.

`reporting.alerts` holds one row per missed call. The call agent writes it
(due now, or later while a voicemail may still come) and publishes it when
due; the dispatcher publishes the ones that came due later. Writing it again
with a voicemail brings it forward; a published one never changes.

`reporting.deliveries` holds one row per alert, channel and recipient, the
idempotency key. Rows are inserted once (a redelivered alert inserts
nothing), claimed by one dispatcher at a time (`claim_due`: SKIP LOCKED, and
a lease that lets another take over a claim whose holder died), and end
`delivered` or `dead`. A row that is delivered is never sent again: that is
what makes an alert arrive once however often the events behind it are
replayed (docs/reporting.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from services.reporting.notifications import Delivery
from switchboard import pg_migrations
from switchboard.pg_migrations import CONNECT_TIMEOUT_SECONDS

SCHEMA = "reporting"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_lock key for "reporting migrations": one key for the whole folder.
MIGRATION_LOCK_KEY = 0x5245504F5254494E


def apply_migrations(dsn: str) -> list[str]:
    return pg_migrations.apply_migrations(dsn, MIGRATIONS_DIR, MIGRATION_LOCK_KEY, schema=SCHEMA)


@dataclass(frozen=True)
class WaitingAlert:
    call_sid: str
    event: dict[str, Any]


@dataclass(frozen=True)
class DeliveryRow:
    call_sid: str
    channel: str
    recipient: str
    client_id: str
    alert_id: str
    alert: dict[str, Any]
    secret: str | None
    status: str
    attempts: int
    first_attempt_at: datetime | None
    last_error: str | None
    not_before: datetime
    delivered_at: datetime | None
    created_at: datetime

    @property
    def key(self) -> str:
        return f"{self.call_sid}/{self.channel}/{self.recipient}"

    def to_json(self) -> dict[str, Any]:
        """As the admin sees it (never the secret)."""

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "callSid": self.call_sid,
            "channel": self.channel,
            "recipient": self.recipient,
            "clientId": self.client_id,
            "alertId": self.alert_id,
            "status": self.status,
            "attempts": self.attempts,
            "firstAttemptAt": iso(self.first_attempt_at),
            "lastError": self.last_error,
            "notBefore": iso(self.not_before),
            "deliveredAt": iso(self.delivered_at),
            "createdAt": iso(self.created_at),
        }


_DELIVERY_COLUMNS = (
    "call_sid, channel, recipient, client_id, alert_id, alert, secret, status, attempts,"
    " first_attempt_at, last_error, not_before, delivered_at, created_at"
)


class Store:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    @classmethod
    def open(cls, dsn: str, max_size: int = 4) -> Store:
        pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "autocommit": True},
            open=True,
        )
        return cls(pool)

    def close(self) -> None:
        self.pool.close()

    def ping(self, timeout: float) -> None:
        with self.pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    # alerts

    def erase_caller(self, number: str, token: str) -> int:
        """caller.erased: the caller's number becomes their token in every alert kept; how many.

        Alerts and deliveries keep the alert event as JSON, where the number
        stands as a whole string value; it is replaced wherever it occurs.
        """
        quoted = orjson.dumps(number).decode()
        replacement = orjson.dumps(token).decode()
        with self.pool.connection() as conn, conn.transaction():
            alerts = conn.execute(
                "UPDATE reporting.alerts SET event = replace(event::text, %s, %s)::jsonb"
                " WHERE strpos(event::text, %s) > 0",
                (quoted, replacement, quoted),
            ).rowcount
            deliveries = conn.execute(
                "UPDATE reporting.deliveries SET alert = replace(alert::text, %s, %s)::jsonb"
                " WHERE strpos(alert::text, %s) > 0",
                (quoted, replacement, quoted),
            ).rowcount
        return alerts + deliveries

    def hold_alert(
        self, call_sid: str, client_id: str, event: dict[str, Any], due: datetime
    ) -> bool:
        """Record the call's alert, due at `due`; False when it was published already.

        A second write (a replayed event, or the voicemail arriving) replaces
        the waiting alert and may bring it forward; a published one stays.
        """
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO reporting.alerts (call_sid, client_id, event, due_at)"
                " VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (call_sid) DO UPDATE SET event = EXCLUDED.event,"
                "  due_at = LEAST(reporting.alerts.due_at, EXCLUDED.due_at)"
                " WHERE reporting.alerts.published_at IS NULL"
                " RETURNING published_at",
                (call_sid, client_id, Jsonb(event), due),
            ).fetchone()
            return row is not None and row[0] is None

    def alert_published(self, call_sid: str, at: datetime) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.alerts SET published_at = %s"
                " WHERE call_sid = %s AND published_at IS NULL",
                (at, call_sid),
            )

    def due_alerts(self, now: datetime, limit: int = 100) -> list[WaitingAlert]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT call_sid, event FROM reporting.alerts"
                " WHERE published_at IS NULL AND due_at <= %s ORDER BY due_at LIMIT %s",
                (now, limit),
            ).fetchall()
        return [WaitingAlert(sid, event) for sid, event in rows]

    # deliveries

    def add_deliveries(self, alert: dict[str, Any], planned: list[Delivery], now: datetime) -> int:
        """Insert the alert's deliveries that do not exist yet; how many were new."""
        added = 0
        with self.pool.connection() as conn, conn.transaction():
            for delivery in planned:
                cursor = conn.execute(
                    "INSERT INTO reporting.deliveries (call_sid, channel, recipient, client_id,"
                    " alert_id, alert, secret, not_before, next_attempt_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (call_sid, channel, recipient) DO NOTHING",
                    (
                        alert["callSid"],
                        delivery.channel,
                        delivery.recipient,
                        alert["clientId"],
                        alert["id"],
                        Jsonb(alert),
                        delivery.secret,
                        delivery.not_before,
                        max(delivery.not_before, now),
                    ),
                )
                added += cursor.rowcount
        return added

    def claim_due(self, now: datetime, lease: timedelta, limit: int = 20) -> list[DeliveryRow]:
        """Claim deliveries that are due (and those whose claim ran out) until now + lease."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(
                "UPDATE reporting.deliveries d SET status = 'sending', claimed_until = %(until)s,"
                " attempts = d.attempts + 1, last_attempt_at = %(now)s,"
                " first_attempt_at = COALESCE(d.first_attempt_at, %(now)s)"
                " FROM (SELECT call_sid, channel, recipient FROM reporting.deliveries"
                "  WHERE (status = 'pending' AND next_attempt_at <= %(now)s)"
                "   OR (status = 'sending' AND claimed_until <= %(now)s)"
                "  ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due"
                " WHERE (d.call_sid, d.channel, d.recipient)"
                "  = (due.call_sid, due.channel, due.recipient)"
                f" RETURNING {', '.join('d.' + c.strip() for c in _DELIVERY_COLUMNS.split(','))}",
                {"now": now, "until": now + lease, "limit": limit},
            ).fetchall()
        return [DeliveryRow(**row) for row in rows]

    def delivered(self, row: DeliveryRow, at: datetime) -> None:
        self._finish(row, "delivered", None, at)

    def dead(self, row: DeliveryRow, reason: str, at: datetime) -> None:
        self._finish(row, "dead", reason, None)

    def retry(self, row: DeliveryRow, reason: str, at: datetime) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.deliveries SET status = 'pending', next_attempt_at = %s,"
                " claimed_until = NULL, last_error = %s"
                " WHERE call_sid = %s AND channel = %s AND recipient = %s AND status = 'sending'",
                (at, reason, row.call_sid, row.channel, row.recipient),
            )

    def _finish(
        self, row: DeliveryRow, status: str, reason: str | None, at: datetime | None
    ) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.deliveries SET status = %s,"
                " last_error = COALESCE(%s, last_error), delivered_at = %s, claimed_until = NULL"
                " WHERE call_sid = %s AND channel = %s AND recipient = %s AND status = 'sending'",
                (status, reason, at, row.call_sid, row.channel, row.recipient),
            )

    def deliveries(
        self,
        status: str | None = None,
        client_id: str | None = None,
        call_sid: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        where, args = ["TRUE"], []
        for column, value in (("status", status), ("client_id", client_id), ("call_sid", call_sid)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM reporting.deliveries"
                f" WHERE {' AND '.join(where)} ORDER BY created_at DESC, channel LIMIT %s",
                (*args, limit),
            ).fetchall()
        return [DeliveryRow(**row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Deliveries by status (for /metrics)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT status, count(*) FROM reporting.deliveries GROUP BY status"
            ).fetchall()
        return {status: count for status, count in rows}
