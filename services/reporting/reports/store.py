"""The client reports' PostgreSQL: who wants which report, and every report (schema `reporting`).

`reporting.report_clients` is reporting's own copy of each client's name,
time zone and report settings, from router's `client.settings-changed`
(newest `occurredAt` wins). `reporting.reports` holds one row per client,
period kind and first day (a unique key): a report is claimed by inserting
that row, and only the holder of an unexpired claim builds it. A worker that
dies mid-build leaves a claim that expires; the next scheduler takes it over,
and a late finish of the old holder changes nothing (its claim is gone).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from switchboard import pg_migrations
from switchboard.pg_migrations import CONNECT_TIMEOUT_SECONDS

SCHEMA = "reporting"
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
# pg_advisory_lock key for "reporting migrations"; the whole folder is applied under it.
MIGRATION_LOCK_KEY = 0x5245504F5254494E

_REPORT_COLUMNS = (
    "id, client_id, period, period_first, period_last, timezone, origin, status, attempts,"
    " claimed_by, claimed_until, next_attempt_at, last_error, pdf_key, html_key, recipients,"
    " created_at, built_at, sent_at"
)


def apply_migrations(dsn: str) -> list[str]:
    return pg_migrations.apply_migrations(dsn, MIGRATIONS_DIR, MIGRATION_LOCK_KEY, schema=SCHEMA)


@dataclass(frozen=True)
class ReportClient:
    """A client as reporting knows it: where it lives and which reports it wants."""

    client_id: str
    name: str | None
    timezone: str
    weekly: bool
    monthly: bool
    emails: tuple[str, ...]
    reports_since: datetime | None
    deleted: bool
    occurred_at: datetime
    # Set on a deleted client: from then on its reports are purged.
    purge_after: datetime | None = None
    # Days its alerts and text-back calls are kept (None: REPORTING_RETENTION_DAYS alone).
    retention_days: int | None = None

    def wants(self, kind: str) -> bool:
        return not self.deleted and (self.weekly if kind == "week" else self.monthly)


@dataclass(frozen=True)
class Report:
    id: str
    client_id: str
    period: str
    period_first: date
    period_last: date
    timezone: str
    origin: str
    status: str
    attempts: int
    claimed_by: str | None
    claimed_until: datetime | None
    next_attempt_at: datetime
    last_error: str | None
    pdf_key: str | None
    html_key: str | None
    recipients: tuple[str, ...]
    created_at: datetime
    built_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Report:
        return cls(**{**row, "id": str(row["id"]), "recipients": tuple(row["recipients"])})

    def to_json(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return moment.isoformat().replace("+00:00", "Z") if moment else None

        return {
            "id": self.id,
            "clientId": self.client_id,
            "period": self.period,
            "from": self.period_first.isoformat(),
            "to": self.period_last.isoformat(),
            "timezone": self.timezone,
            "origin": self.origin,
            "status": self.status,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "createdAt": when(self.created_at),
            "builtAt": when(self.built_at),
            "sentAt": when(self.sent_at),
            "recipients": list(self.recipients),
        }


class ReportStore:
    """Report clients and reports, through a connection pool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    @classmethod
    def open(cls, dsn: str, max_size: int = 4) -> ReportStore:
        pool: ConnectionPool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT_SECONDS,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "autocommit": True},
            check=ConnectionPool.check_connection,
            name="reporting-reports",
            open=False,
        )
        pool.open(wait=False)
        return cls(pool)

    def close(self) -> None:
        self.pool.close()

    def ping(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("SELECT 1")

    # --- clients (from client.settings-changed)

    def save_client(self, client: ReportClient) -> None:
        """Upsert a client's settings unless a newer event was saved already.

        `reports_since` is kept while reports stay on, so turning them on
        again later does not bring back the periods missed while they were off.
        """
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO reporting.report_clients (client_id, name, timezone, weekly, monthly,"
                " emails, reports_since, deleted, occurred_at, purge_after, retention_days)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (client_id) DO UPDATE SET name = EXCLUDED.name,"
                " timezone = EXCLUDED.timezone, weekly = EXCLUDED.weekly,"
                " monthly = EXCLUDED.monthly, emails = EXCLUDED.emails,"
                " reports_since = CASE WHEN report_clients.reports_since IS NOT NULL"
                "   AND EXCLUDED.reports_since IS NOT NULL THEN report_clients.reports_since"
                "   ELSE EXCLUDED.reports_since END,"
                " deleted = EXCLUDED.deleted, occurred_at = EXCLUDED.occurred_at,"
                " purge_after = EXCLUDED.purge_after, retention_days = EXCLUDED.retention_days"
                " WHERE EXCLUDED.occurred_at >= report_clients.occurred_at",
                (
                    client.client_id,
                    client.name,
                    client.timezone,
                    client.weekly,
                    client.monthly,
                    list(client.emails),
                    client.reports_since,
                    client.deleted,
                    client.occurred_at,
                    client.purge_after,
                    client.retention_days,
                ),
            )

    def client(self, client_id: str) -> ReportClient | None:
        with self.pool.connection() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    "SELECT * FROM reporting.report_clients WHERE client_id = %s", (client_id,)
                )
                .fetchone()
            )
        return _client(row) if row else None

    def subscribed_clients(self) -> list[ReportClient]:
        with self.pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    "SELECT * FROM reporting.report_clients"
                    " WHERE NOT deleted AND (weekly OR monthly) ORDER BY client_id"
                )
                .fetchall()
            )
        return [_client(row) for row in rows]

    # --- reports

    def claim_slot(
        self, client: ReportClient, kind: str, first: date, last: date, origin: str
    ) -> tuple[Report, bool]:
        """The report of this client and period, inserted as pending unless it exists.

        Returns the row and whether this call created it: the unique key
        makes the insert the one place where "exactly one" is decided.
        """
        with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            row = cur.execute(
                "INSERT INTO reporting.reports (id, client_id, period, period_first, period_last,"
                " timezone, origin, status, recipients) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " 'pending', %s) ON CONFLICT (client_id, period, period_first) DO NOTHING"
                f" RETURNING {_REPORT_COLUMNS}",
                (
                    str(uuid.uuid4()),
                    client.client_id,
                    kind,
                    first,
                    last,
                    client.timezone,
                    origin,
                    list(client.emails),
                ),
            ).fetchone()
            if row is not None:
                return Report.from_row(row), True
            found = cur.execute(
                f"SELECT {_REPORT_COLUMNS} FROM reporting.reports"
                " WHERE client_id = %s AND period = %s AND period_first = %s",
                (client.client_id, kind, first),
            ).fetchone()
        assert found is not None
        return Report.from_row(found), False

    def take(self, worker: str, lease: float, report_id: str | None = None) -> Report | None:
        """Claim one report to build now: pending, failed and due again, or a claim expired
        (its holder died building it, or after building and before sending).

        The claim holds for `lease` seconds; SKIP LOCKED lets several
        schedulers look at once without waiting on each other.
        """
        where = (
            "(status IN ('pending', 'failed') AND next_attempt_at <= now())"
            " OR (status IN ('building', 'built') AND claimed_until < now())"
        )
        params: list[Any] = [worker, timedelta(seconds=lease)]
        if report_id is not None:
            where = f"id = %s AND ({where} OR status IN ('pending', 'failed'))"
            params.append(report_id)
        with self.pool.connection() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    "UPDATE reporting.reports SET status = 'building', claimed_by = %s,"
                    " claimed_until = now() + %s, attempts = attempts + 1"
                    " WHERE id = (SELECT id FROM reporting.reports WHERE "
                    f"{where} ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
                    f" RETURNING {_REPORT_COLUMNS}",
                    params,
                )
                .fetchone()
            )
        return Report.from_row(row) if row else None

    def built(
        self, report_id: str, worker: str, figures: dict[str, Any], pdf_key: str, html_key: str
    ) -> bool:
        """Record the stored documents; False when the claim was lost (someone else builds)."""
        with self.pool.connection() as conn:
            done = conn.execute(
                "UPDATE reporting.reports SET status = 'built', figures = %s, pdf_key = %s,"
                " html_key = %s, built_at = now(), last_error = NULL"
                " WHERE id = %s AND status = 'building' AND claimed_by = %s",
                (Jsonb(figures), pdf_key, html_key, report_id, worker),
            )
            return done.rowcount == 1

    def sent(self, report_id: str, worker: str) -> bool:
        with self.pool.connection() as conn:
            done = conn.execute(
                "UPDATE reporting.reports SET status = 'sent', sent_at = now(),"
                " claimed_by = NULL, claimed_until = NULL"
                " WHERE id = %s AND claimed_by = %s",
                (report_id, worker),
            )
            return done.rowcount == 1

    def release(self, report_id: str, worker: str) -> None:
        """A built report with nobody to send it to is finished."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.reports SET claimed_by = NULL, claimed_until = NULL"
                " WHERE id = %s AND claimed_by = %s",
                (report_id, worker),
            )

    def failed(self, report_id: str, worker: str, error: str, retry_in: float) -> None:
        """The build failed: kept as failed, with the reason, and tried again in `retry_in` s."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.reports SET status = 'failed', last_error = %s,"
                " next_attempt_at = now() + %s, claimed_by = NULL, claimed_until = NULL"
                " WHERE id = %s AND claimed_by = %s",
                (error[:2000], timedelta(seconds=retry_in), report_id, worker),
            )

    def report(self, report_id: str) -> Report | None:
        try:
            uuid.UUID(report_id)
        except ValueError:
            return None
        with self.pool.connection() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    f"SELECT {_REPORT_COLUMNS} FROM reporting.reports WHERE id = %s", (report_id,)
                )
                .fetchone()
            )
        return Report.from_row(row) if row else None

    def figures(self, report_id: str) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT figures FROM reporting.reports WHERE id = %s", (report_id,)
            ).fetchone()
        return row[0] if row else None

    def reports(self, client_id: str | None, limit: int) -> list[Report]:
        clause, params = ("WHERE client_id = %s", [client_id]) if client_id else ("", [])
        with self.pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    f"SELECT {_REPORT_COLUMNS} FROM reporting.reports {clause}"
                    " ORDER BY period_first DESC, period, client_id LIMIT %s",
                    [*params, limit],
                )
                .fetchall()
            )
        return [Report.from_row(row) for row in rows]

    def naming(self, number: str) -> list[tuple[str, dict[str, Any]]]:
        """(id, figures) of every report whose figures name `number`.

        A number appears in the figures only as a whole JSON string (a
        caller's E.164), so the quoted string finds exactly those.
        """
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, figures FROM reporting.reports"
                " WHERE figures IS NOT NULL AND strpos(figures::text, %s) > 0",
                (f'"{number}"',),
            ).fetchall()
        return [(str(report_id), figures) for report_id, figures in rows]

    def set_figures(self, report_id: str, figures: dict[str, Any]) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.reports SET figures = %s WHERE id = %s",
                (Jsonb(figures), report_id),
            )

    def purge_due(self, now: datetime) -> list[Report]:
        """The reports of deleted clients whose purge time has come."""
        with self.pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    f"SELECT {_REPORT_COLUMNS} FROM reporting.reports WHERE client_id IN"
                    " (SELECT client_id FROM reporting.report_clients"
                    "  WHERE deleted AND purge_after IS NOT NULL AND purge_after <= %s)",
                    (now,),
                )
                .fetchall()
            )
        return [Report.from_row(row) for row in rows]

    def delete_report(self, report_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM reporting.reports WHERE id = %s", (report_id,))

    def count_by_status(self) -> dict[str, int]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT status, count(*) FROM reporting.reports GROUP BY status"
            ).fetchall()
        return {status: int(count) for status, count in rows}

    def failing(self) -> list[Report]:
        with self.pool.connection() as conn:
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    f"SELECT {_REPORT_COLUMNS} FROM reporting.reports WHERE status = 'failed'"
                    " ORDER BY next_attempt_at LIMIT 20"
                )
                .fetchall()
            )
        return [Report.from_row(row) for row in rows]


def _client(row: dict[str, Any]) -> ReportClient:
    return ReportClient(**{**row, "emails": tuple(row["emails"])})
