"""Reporting's housekeeping: a deleted client's purge, and per-client retention of caller data.

Alerts, deliveries and the text-back ledger hold callers' numbers. Once a
deleted client's `purgeAfter` (router's, on its last `client.settings-changed`)
has passed, everything of the client goes: its published alerts, its
delivered and dead deliveries, its text-back calls, the text-back settings
of its numbers, and the opt-outs from numbers it had that no other client
holds now. Every other client keeps these rows for its `retentionDays`, or
`REPORTING_RETENTION_DAYS` when shorter or when the client has none (0 and
no client setting keep everything), but never what is still needed:

- an alert not yet published and a delivery not yet delivered or dead stay
  until they end (a deleted client plans no new deliveries, so a purged
  client's last ones go on a later pass);
- a caller's last text from a number stays while a cooldown could still
  count it (router's longest cooldown), and a sent text whose `sms.sent` is
  not yet on Kafka stays until it is;
- opt-outs are never expired: a caller's STOP outlives any retention.

`cutoffs` decides per client (pure); `Housekeeping.run` deletes, each
client's purge in one transaction. Every DELETE is idempotent, so any number
of reporting processes may run it at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# Router's longest text-back cooldown (MAX_COOLDOWN_HOURS): a caller's last text from a
# number is kept at least this long, whatever the retention.
LONGEST_COOLDOWN = timedelta(hours=24 * 30)
# How often a pass runs (and once at start); purges and retention are due within it.
EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class ClientRetention:
    """What housekeeping needs of one client (reporting.report_clients)."""

    client_id: str
    retention_days: int | None = None
    deleted: bool = False
    purge_after: datetime | None = None


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these go: per client, else `default` (None keeps them)."""

    per_client: dict[str, datetime]
    default: datetime | None
    purged: frozenset[str]


def cutoffs(clients: Iterable[ClientRetention], now: datetime, default_days: int) -> Cutoffs:
    """Which clients are purged now, and the moment before which each one's rows go (pure).

    A client's own `retentionDays` and the global default both apply, so the
    shorter wins; a client with neither keeps everything.
    """
    default = now - timedelta(days=default_days) if default_days > 0 else None
    per_client, purged = {}, set()
    for client in clients:
        if client.deleted and client.purge_after is not None and client.purge_after <= now:
            purged.add(client.client_id)
        elif client.retention_days:
            own = now - timedelta(days=client.retention_days)
            per_client[client.client_id] = own if default is None else max(own, default)
    return Cutoffs(per_client, default, frozenset(purged))


@dataclass
class Swept:
    """What one pass deleted, table by table."""

    purged_clients: list[str] = field(default_factory=list)
    alerts: int = 0
    deliveries: int = 0
    textback_calls: int = 0
    textback_numbers: int = 0
    opt_outs: int = 0

    def add(self, counts: dict[str, int]) -> None:
        for name, count in counts.items():
            setattr(self, name, getattr(self, name) + count)

    @property
    def total(self) -> int:
        return (
            self.alerts
            + self.deliveries
            + self.textback_calls
            + self.textback_numbers
            + self.opt_outs
        )


# The rows of a purged client that are done with: an unpublished alert or an unfinished
# delivery may still be in flight and goes on a later pass, once it has ended.
_PURGE = {
    "opt_outs": """
        DELETE FROM reporting.textback_opt_outs o
        WHERE o.phone_number IN (
            SELECT phone_number FROM reporting.textback_calls WHERE client_id = %(client)s
            UNION SELECT phone_number FROM reporting.textback_numbers WHERE client_id = %(client)s)
          AND NOT EXISTS (
            SELECT 1 FROM reporting.textback_numbers n
            WHERE n.phone_number = o.phone_number
              AND n.client_id IS NOT NULL AND n.client_id <> %(client)s)
        """,
    "textback_numbers": "DELETE FROM reporting.textback_numbers WHERE client_id = %(client)s",
    "textback_calls": "DELETE FROM reporting.textback_calls WHERE client_id = %(client)s",
    "deliveries": """
        DELETE FROM reporting.deliveries
        WHERE client_id = %(client)s AND status IN ('delivered', 'dead')
        """,
    "alerts": """
        DELETE FROM reporting.alerts
        WHERE client_id = %(client)s AND published_at IS NOT NULL
        """,
}

# Per table: its alias, the time a row's age counts from, and what keeps a row whatever
# its age. Kept texts: one not yet announced on Kafka, and a caller's last text from a
# number while the longest cooldown could still count it.
_EXPIRING = {
    "alerts": ("a", "created_at", "a.published_at IS NULL"),
    "deliveries": ("d", "created_at", "d.status NOT IN ('delivered', 'dead')"),
    "textback_calls": (
        "t",
        "decided_at",
        """(t.status = 'sent' AND NOT t.published)
            OR (t.status IN ('sending', 'sent') AND t.decided_at >= %(cooldown)s
                AND t.decided_at = (
                    SELECT max(l.decided_at) FROM reporting.textback_calls l
                    WHERE l.phone_number = t.phone_number AND l.caller = t.caller
                      AND l.status IN ('sending', 'sent')))""",
    ),
}


def _retention(table: str) -> tuple[str, str]:
    """The table's two DELETEs: by each client's own cutoff, and by the default for the rest.

    The rest are the clients without a setting of their own (and rows without a
    client); purged clients are left to their purge.
    """
    alias, moment, keep = _EXPIRING[table]
    own = f"""
        DELETE FROM reporting.{table} {alias}
        USING unnest(%(clients)s::text[], %(befores)s::timestamptz[]) AS c(client_id, before)
        WHERE {alias}.client_id = c.client_id AND {alias}.{moment} < c.before
          AND NOT ({keep})
        """
    default = f"""
        DELETE FROM reporting.{table} {alias}
        WHERE {alias}.{moment} < %(default)s
          AND ({alias}.client_id IS NULL OR NOT {alias}.client_id = ANY(%(decided)s::text[]))
          AND NOT ({keep})
        """
    return own, default


class Housekeeping:
    """Runs `cutoffs` against reporting's PostgreSQL; `run(now)` is one pass."""

    def __init__(self, pool: ConnectionPool[Any], default_days: int = 0) -> None:
        self.pool = pool
        self.default_days = default_days
        self._next: datetime | None = None

    def clients(self) -> list[ClientRetention]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT client_id, retention_days, deleted, purge_after"
                " FROM reporting.report_clients"
                " WHERE retention_days IS NOT NULL OR (deleted AND purge_after IS NOT NULL)"
            ).fetchall()
        return [ClientRetention(*row) for row in rows]

    def run(self, now: datetime) -> Swept:
        """Purge the deleted clients whose time has come, then expire everyone's old rows."""
        decided = cutoffs(self.clients(), now, self.default_days)
        swept = Swept()
        for client_id in sorted(decided.purged):
            counts = self.purge(client_id)
            swept.add(counts)
            swept.purged_clients.append(client_id)
            if any(counts.values()):
                log.info("deleted client's alerts and texts purged", extra={"clientId": client_id})
        if decided.per_client or decided.default is not None:
            swept.add(self.expire(decided, now))
        return swept

    def run_if_due(self, now: datetime) -> Swept | None:
        """A pass when none ran within `EVERY` (the first call always runs one)."""
        if self._next is not None and now < self._next:
            return None
        swept = self.run(now)
        self._next = now + EVERY
        if swept.total:
            log.info("housekeeping deleted %d row(s) of alerts and texts", swept.total)
        return swept

    def purge(self, client_id: str) -> dict[str, int]:
        """Every row of the client that is done with; the opt-outs before the calls naming them."""
        with self.pool.connection() as conn, conn.transaction():
            return {
                name: conn.execute(statement, {"client": client_id}).rowcount
                for name, statement in _PURGE.items()
            }

    def expire(self, decided: Cutoffs, now: datetime) -> dict[str, int]:
        params = {
            "clients": list(decided.per_client),
            "befores": list(decided.per_client.values()),
            "default": decided.default,
            "decided": sorted(decided.per_client.keys() | decided.purged),
            "cooldown": now - LONGEST_COOLDOWN,
        }
        counts = {}
        with self.pool.connection() as conn:
            for table in _EXPIRING:
                own, default = _retention(table)
                counts[table] = conn.execute(own, params).rowcount if decided.per_client else 0
                if decided.default is not None:
                    counts[table] += conn.execute(default, params).rowcount
        return counts
