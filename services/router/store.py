"""The router's PostgreSQL: migrations, clients, numbers, keys, audit, outbox.

All of the router's SQL lives here. Migrations are numbered, forward-only
files in `migrations/`, applied under an advisory lock and recorded in
`schema_migrations`, so any number of processes may run them at once.

Writes go through `Store.transaction()`, which hands out a `Tx`: a change,
its audit entry and the events it causes (the outbox) commit together or not
at all. A change to who answers a number sends NOTIFY on `NUMBERS_CHANNEL`
in the same transaction; `ChangeListener` is the LISTEN side that keeps each
process's in-memory routing table fresh. `drain_outbox` hands committed
events to a publisher, one drainer at a time across all processes, so events
with the same key leave in the order they were written. A number change also
asks for the number's configuration at Twilio to be synced (`twilio_sync`,
in the same transaction); `Store.twilio_sync_turn` gives the Twilio sync its
turn (one process at a time) to work through them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from services.router.access import ApiKey, IssuedKey
from services.router.audit import AuditEntry, AuditQuery, AuditRecord
from services.router.directory import (
    Client,
    ClientSettings,
    LeadThresholds,
    NumberAssignment,
    OwnedNumber,
    SyncTarget,
    TwilioConfigState,
    TwilioSyncState,
)
from services.router.flows import Flow
from services.router.notifications import Notifications
from switchboard import events, pg_migrations
from switchboard.http import ApiError
from switchboard.pg_migrations import (
    CONNECT_TIMEOUT_SECONDS,
    Migration,
    load_migrations,
)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
NUMBERS_CHANNEL = "router_numbers_changed"
# pg_advisory_lock keys, constants unique to this store: "router migrations",
# "router outbox" and "router Twilio sync".
MIGRATION_LOCK_KEY = 0x524F555445524D47
OUTBOX_LOCK_KEY = 0x524F555445524F42
TWILIO_SYNC_LOCK_KEY = 0x524F555445525453
# Keep an idle LISTEN connection honest: a dead server is noticed in ~25 s.
_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

_CLIENT_COLUMNS = (
    "id, name, forward_to, timezone, recording_enabled, recording_disclaimer,"
    " retention_days, delete_from_twilio, monthly_revenue, value_per_conversion,"
    " lead_short_sec, lead_long_sec, lead_qualified_sec, daily_outbound_cap,"
    " created_at, updated_at"
)
# A number's own recording settings override its client's; NULL follows the client.
_ASSIGNMENT_SELECT = (
    "SELECT n.phone_number, n.client_id, n.forward_to,"
    " COALESCE(n.record, c.recording_enabled),"
    " COALESCE(n.recording_disclaimer, c.recording_disclaimer),"
    " n.campaign, n.assigned_at, c.timezone, n.flow"
    " FROM phone_numbers n JOIN clients c ON c.id = n.client_id"
)
_NOTIFICATIONS_SELECT = "SELECT settings, webhook_secret FROM client_notifications"
_KEY_COLUMNS = "id, client_id, name, hint, created_at, revoked_at"
_AUDIT_COLUMNS = "id, at, actor, action, target_type, target_id, client_id, details"
# Columns a PATCH of a number may set.
_NUMBER_SETTINGS = ("forward_to", "record", "recording_disclaimer", "campaign")

Publish = Callable[[str, str, bytes], None]


class NumberTaken(Exception):
    """The phone number is already assigned to a client."""


def migrations() -> list[Migration]:
    return load_migrations(MIGRATIONS_DIR)


def apply_migrations(dsn: str) -> list[str]:
    """Apply router's migrations not yet recorded; return the names applied now."""
    return pg_migrations.apply_migrations(dsn, MIGRATIONS_DIR, MIGRATION_LOCK_KEY)


def applied_migrations(dsn: str) -> list[tuple[int, str]]:
    return pg_migrations.applied_migrations(dsn)


def open_pool(dsn: str, max_size: int = 8) -> ConnectionPool:
    """A pool that connects in the background: a down database fails requests, not start-up."""
    pool: ConnectionPool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_SECONDS,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, **_KEEPALIVES},
        check=ConnectionPool.check_connection,
        name="router",
        open=False,
    )
    pool.open(wait=False)
    return pool


class Store:
    """The router's tables, through a connection pool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def close(self) -> None:
        self._pool.close()

    def ping(self, timeout: float) -> None:
        with self._pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction: commits when the block ends, rolls back if it raises."""
        with self._pool.connection() as conn, conn.transaction():
            yield Tx(conn)

    # ---- reads
    def list_clients(self, only: str | None = None) -> list[Client]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM clients"
                " WHERE %(only)s::uuid IS NULL OR id = %(only)s::uuid"
                " ORDER BY created_at, id",
                {"only": only},
            ).fetchall()
        return [_client(row) for row in rows]

    def get_client(self, client_id: str) -> Client | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE id = %s", (UUID(client_id),)
            ).fetchone()
        return None if row is None else _client(row)

    def notifications(self, client_id: str) -> Notifications | None:
        """A client's notification settings with the webhook's secret; None if it has none."""
        with self._pool.connection() as conn:
            row = conn.execute(
                f"{_NOTIFICATIONS_SELECT} WHERE client_id = %s", (UUID(client_id),)
            ).fetchone()
        return None if row is None else _notifications(row)

    def list_numbers(self, client_id: str) -> list[NumberAssignment]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"{_ASSIGNMENT_SELECT} WHERE n.client_id = %s"
                " ORDER BY n.assigned_at, n.phone_number",
                (UUID(client_id),),
            ).fetchall()
        return [_assignment(row) for row in rows]

    def get_number(self, client_id: str, phone_number: str) -> NumberAssignment | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"{_ASSIGNMENT_SELECT} WHERE n.client_id = %s AND n.phone_number = %s",
                (UUID(client_id), phone_number),
            ).fetchone()
        return None if row is None else _assignment(row)

    def find_number(self, phone_number: str) -> NumberAssignment | None:
        """The assignment of `phone_number`, whichever client holds it."""
        with self._pool.connection() as conn:
            row = conn.execute(
                f"{_ASSIGNMENT_SELECT} WHERE n.phone_number = %s", (phone_number,)
            ).fetchone()
        return None if row is None else _assignment(row)

    def all_assignments(self) -> list[NumberAssignment]:
        with self._pool.connection() as conn:
            rows = conn.execute(_ASSIGNMENT_SELECT).fetchall()
        return [_assignment(row) for row in rows]

    def owned_numbers(self, status: str | None = None) -> list[OwnedNumber]:
        """Every number held; `status` "pooled" or "assigned" narrows the list."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT o.phone_number, o.twilio_sid, o.locality, o.region, n.client_id,"
                " o.acquired_at, o.pooled_at, s.phone_number IS NOT NULL, s.attempts,"
                " s.last_error, o.twilio_synced_at"
                " FROM owned_numbers o LEFT JOIN phone_numbers n USING (phone_number)"
                " LEFT JOIN twilio_sync s USING (phone_number)"
                " WHERE %(status)s::text IS NULL"
                " OR (%(status)s = 'pooled') = (n.client_id IS NULL)"
                " ORDER BY o.phone_number",
                {"status": status},
            ).fetchall()
        return [_owned(row) for row in rows]

    def list_api_keys(self, client_id: str) -> list[ApiKey]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE client_id = %s ORDER BY created_at, id",
                (UUID(client_id),),
            ).fetchall()
        return [_api_key(row) for row in rows]

    def key_owner(self, key_hash: str) -> tuple[str, str] | None:
        """(client id, key id) of the live key with this hash, if any."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT client_id, id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
                (key_hash,),
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE"
                " (%(client)s::uuid IS NULL OR client_id = %(client)s::uuid)"
                " AND (%(action)s::text IS NULL OR action = %(action)s)"
                " AND (%(actor)s::text IS NULL OR actor = %(actor)s)"
                " AND (%(ttype)s::text IS NULL OR target_type = %(ttype)s)"
                " AND (%(tid)s::text IS NULL OR target_id = %(tid)s)"
                " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
                " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
                " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
                " ORDER BY id DESC LIMIT %(limit)s",
                {
                    "client": query.client_id,
                    "action": query.action,
                    "actor": query.actor,
                    "ttype": query.target_type,
                    "tid": query.target_id,
                    "since": query.since,
                    "until": query.until,
                    "before": query.before,
                    "limit": query.limit,
                },
            ).fetchall()
        return [_audit(row) for row in rows]

    # ---- the Twilio sync
    def twilio_config_states(self) -> list[TwilioConfigState]:
        """Every number held, where it forwards, and what Twilio last accepted for it."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT o.phone_number, n.forward_to, o.twilio_config,"
                " s.phone_number IS NOT NULL"
                " FROM owned_numbers o LEFT JOIN phone_numbers n USING (phone_number)"
                " LEFT JOIN twilio_sync s USING (phone_number)"
                " ORDER BY o.phone_number"
            ).fetchall()
        return [
            TwilioConfigState(phone, forward_to, _json_or_none(applied), pending)
            for phone, forward_to, applied, pending in rows
        ]

    def request_twilio_sync(self, phone_numbers: list[str]) -> None:
        with self.transaction() as tx:
            for phone_number in phone_numbers:
                tx.request_twilio_sync(phone_number)

    def pending_twilio_syncs(self) -> int:
        with self._pool.connection(timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            row = conn.execute("SELECT count(*) FROM twilio_sync").fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def twilio_sync_turn(self) -> Iterator[SyncTurn | None]:
        """The Twilio sync's turn, or None while another process has it.

        A session advisory lock, held for the whole turn: Twilio calls happen
        between the turn's short transactions, and no other process may push
        an older configuration of the same number in the meantime.
        """
        with self._pool.connection() as conn:
            with conn.transaction():
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (TWILIO_SYNC_LOCK_KEY,)
                ).fetchone()
            if row is None or not row[0]:
                yield None
                return
            try:
                yield SyncTurn(conn)
            finally:
                if not conn.closed and not conn.broken:
                    try:
                        with conn.transaction():
                            conn.execute("SELECT pg_advisory_unlock(%s)", (TWILIO_SYNC_LOCK_KEY,))
                    except psycopg.Error:
                        # A session that cannot unlock is a dead one: its lock died with it.
                        log.warning("could not release the Twilio sync lock", exc_info=True)

    # ---- the outbox
    def outbox_size(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM event_outbox").fetchone()
        return int(row[0]) if row else 0

    def drain_outbox(self, publish: Publish, limit: int = 100) -> tuple[int, Exception | None]:
        """Publish up to `limit` waiting events in order; (published, the error that stopped it).

        The advisory lock makes drainers take turns, so two processes never
        publish events of one key out of order. An event leaves the outbox
        only after `publish` returned, in the same transaction: a crash in
        between publishes it again (consumers deduplicate by event id).
        """
        done: list[int] = []
        error: Exception | None = None
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (OUTBOX_LOCK_KEY,))
            rows = conn.execute(
                "SELECT id, topic, key, payload FROM event_outbox ORDER BY id LIMIT %s", (limit,)
            ).fetchall()
            for event_id, topic, key, payload in rows:
                try:
                    publish(topic, key, bytes(payload))
                except Exception as err:
                    error = err
                    break
                done.append(event_id)
            if done:
                conn.execute("DELETE FROM event_outbox WHERE id = ANY(%s)", (done,))
        return len(done), error


class Tx:
    """Writes inside one transaction (see Store.transaction)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    # ---- clients
    def insert_client(self, settings: ClientSettings) -> Client:
        row = self._conn.execute(
            "INSERT INTO clients (name, forward_to, timezone, recording_enabled,"
            " recording_disclaimer, retention_days, delete_from_twilio, monthly_revenue,"
            " value_per_conversion, lead_short_sec, lead_long_sec, lead_qualified_sec,"
            " daily_outbound_cap) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" RETURNING {_CLIENT_COLUMNS}",
            _settings_values(settings),
        ).fetchone()
        assert row is not None
        return _client(row)

    def lock_client(self, client_id: str) -> Client | None:
        """The client, locked against concurrent changes until the transaction ends."""
        row = self._conn.execute(
            f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE id = %s FOR UPDATE", (UUID(client_id),)
        ).fetchone()
        return None if row is None else _client(row)

    def update_client(self, client_id: str, settings: ClientSettings) -> Client:
        row = self._conn.execute(
            "UPDATE clients SET name = %s, forward_to = %s, timezone = %s,"
            " recording_enabled = %s, recording_disclaimer = %s, retention_days = %s,"
            " delete_from_twilio = %s, monthly_revenue = %s, value_per_conversion = %s,"
            " lead_short_sec = %s, lead_long_sec = %s, lead_qualified_sec = %s,"
            " daily_outbound_cap = %s,"
            f" updated_at = now() WHERE id = %s RETURNING {_CLIENT_COLUMNS}",
            (*_settings_values(settings), UUID(client_id)),
        ).fetchone()
        assert row is not None, "update_client needs a client locked in this transaction"
        return _client(row)

    def delete_client(self, client_id: str) -> None:
        self._conn.execute("DELETE FROM clients WHERE id = %s", (UUID(client_id),))

    # ---- a client's notification settings
    def lock_notifications(self, client_id: str) -> Notifications | None:
        """A client's notification settings (None: it has none), locked until the end."""
        row = self._conn.execute(
            f"{_NOTIFICATIONS_SELECT} WHERE client_id = %s FOR UPDATE", (UUID(client_id),)
        ).fetchone()
        return None if row is None else _notifications(row)

    def set_notifications(self, client_id: str, settings: Notifications) -> None:
        self._conn.execute(
            "INSERT INTO client_notifications (client_id, settings, webhook_secret)"
            " VALUES (%(client)s, %(settings)s, %(secret)s) ON CONFLICT (client_id) DO UPDATE"
            " SET settings = EXCLUDED.settings, webhook_secret = EXCLUDED.webhook_secret,"
            " updated_at = now()",
            {
                "client": UUID(client_id),
                "settings": Jsonb(settings.to_json()),
                "secret": settings.secret,
            },
        )

    # ---- the daily cap of outbound calls
    def reserve_outbound_call(self, client_id: str, cap: int) -> date | None:
        """Count one more outbound call today (UTC) unless `cap` are counted; the day, or None.

        One statement, so concurrent requests of one client cannot both take
        the last call of the day.
        """
        row = self._conn.execute(
            "INSERT INTO outbound_call_counts AS c (client_id, day, calls)"
            " SELECT %(client)s, (now() AT TIME ZONE 'UTC')::date, 1 WHERE %(cap)s > 0"
            " ON CONFLICT (client_id, day) DO UPDATE SET calls = c.calls + 1"
            " WHERE c.calls < %(cap)s RETURNING day",
            {"client": UUID(client_id), "cap": cap},
        ).fetchone()
        return None if row is None else row[0]

    def unreserve_outbound_call(self, client_id: str, day: date) -> None:
        """Give back a call counted by reserve_outbound_call that Twilio did not place."""
        self._conn.execute(
            "UPDATE outbound_call_counts SET calls = calls - 1"
            " WHERE client_id = %s AND day = %s AND calls > 0",
            (UUID(client_id), day),
        )

    # ---- numbers
    def assignments_of(self, client_id: str) -> list[NumberAssignment]:
        rows = self._conn.execute(
            f"{_ASSIGNMENT_SELECT} WHERE n.client_id = %s ORDER BY n.phone_number FOR UPDATE OF n",
            (UUID(client_id),),
        ).fetchall()
        return [_assignment(row) for row in rows]

    def lock_assignment(self, client_id: str, phone_number: str) -> NumberAssignment | None:
        row = self._conn.execute(
            f"{_ASSIGNMENT_SELECT} WHERE n.client_id = %s AND n.phone_number = %s FOR UPDATE OF n",
            (UUID(client_id), phone_number),
        ).fetchone()
        return None if row is None else _assignment(row)

    def lock_number(self, phone_number: str) -> NumberAssignment | None:
        """The assignment of `phone_number`, whichever client holds it, locked."""
        row = self._conn.execute(
            f"{_ASSIGNMENT_SELECT} WHERE n.phone_number = %s FOR UPDATE OF n", (phone_number,)
        ).fetchone()
        return None if row is None else _assignment(row)

    def set_flow(self, phone_number: str, flow: Flow | None) -> NumberAssignment:
        """Store a number's call flow (None: the number has none) and return the assignment."""
        self._conn.execute(
            "UPDATE phone_numbers SET flow = %s, updated_at = now() WHERE phone_number = %s",
            (None if flow is None else Jsonb(flow.to_json()), phone_number),
        )
        found = self.lock_number(phone_number)
        assert found is not None
        return found

    def hold_number(
        self,
        phone_number: str,
        twilio_sid: str | None = None,
        locality: str | None = None,
        region: str | None = None,
    ) -> None:
        """Record that the business holds this number (known facts are kept)."""
        self._conn.execute(
            "INSERT INTO owned_numbers (phone_number, twilio_sid, locality, region)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (phone_number) DO UPDATE SET"
            " twilio_sid = COALESCE(EXCLUDED.twilio_sid, owned_numbers.twilio_sid),"
            " locality = COALESCE(EXCLUDED.locality, owned_numbers.locality),"
            " region = COALESCE(EXCLUDED.region, owned_numbers.region)",
            (phone_number, twilio_sid, locality, region),
        )

    def take_from_pool(self, area_code: str | None) -> str | None:
        """The pooled number (in `area_code` if given) that rested longest, locked; or None.

        SKIP LOCKED lets concurrent assignments each take a different number.
        """
        pattern = f"+1{area_code}%" if area_code else None
        row = self._conn.execute(
            "SELECT o.phone_number FROM owned_numbers o"
            " WHERE NOT EXISTS (SELECT 1 FROM phone_numbers n"
            "                   WHERE n.phone_number = o.phone_number)"
            " AND (%(pattern)s::text IS NULL OR o.phone_number LIKE %(pattern)s)"
            " ORDER BY o.pooled_at, o.phone_number LIMIT 1 FOR UPDATE OF o SKIP LOCKED",
            {"pattern": pattern},
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_assignment(
        self,
        client_id: str,
        phone_number: str,
        forward_to: str,
        record: bool | None,
        recording_disclaimer: str | None,
        campaign: str | None,
    ) -> NumberAssignment:
        """Assign a number to a client; NumberTaken if any client holds it already."""
        row = self._conn.execute(
            "INSERT INTO phone_numbers"
            " (phone_number, client_id, forward_to, record, recording_disclaimer, campaign)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (phone_number) DO NOTHING RETURNING phone_number",
            (phone_number, UUID(client_id), forward_to, record, recording_disclaimer, campaign),
        ).fetchone()
        if row is None:
            raise NumberTaken(phone_number)
        found = self.lock_assignment(client_id, phone_number)
        assert found is not None
        return found

    def update_assignment(
        self, client_id: str, phone_number: str, changes: dict[str, Any]
    ) -> NumberAssignment:
        unknown = set(changes) - set(_NUMBER_SETTINGS)
        if unknown:
            raise ValueError(f"not a number setting: {sorted(unknown)}")
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
            for name in changes
        )
        self._conn.execute(
            sql.SQL(
                "UPDATE phone_numbers SET {}, updated_at = now()"
                " WHERE client_id = %(client)s AND phone_number = %(phone)s"
            ).format(assignments),
            {**changes, "client": UUID(client_id), "phone": phone_number},
        )
        found = self.lock_assignment(client_id, phone_number)
        assert found is not None
        return found

    def release(self, phone_number: str) -> datetime:
        """Unassign a number and put it back in the pool; when that happened."""
        self._conn.execute("DELETE FROM phone_numbers WHERE phone_number = %s", (phone_number,))
        self.hold_number(phone_number)
        row = self._conn.execute(
            "UPDATE owned_numbers SET pooled_at = now() WHERE phone_number = %s"
            " RETURNING pooled_at",
            (phone_number,),
        ).fetchone()
        assert row is not None
        moment: datetime = row[0]
        return moment

    def request_twilio_sync(self, phone_number: str) -> None:
        """Once committed, the number's configuration at Twilio is brought up to date."""
        self._conn.execute(
            "INSERT INTO twilio_sync (phone_number) VALUES (%s)"
            " ON CONFLICT (phone_number) DO UPDATE SET"
            " version = nextval('twilio_sync_version'), requested_at = now(), due_at = now(),"
            " attempts = 0, last_error = NULL",
            (phone_number,),
        )

    def twilio_configured(self, phone_number: str, sid: str, config: dict[str, Any]) -> None:
        """Twilio accepted `config` for the number (bought configured so)."""
        self._conn.execute(
            "UPDATE owned_numbers SET twilio_sid = %s, twilio_config = %s,"
            " twilio_synced_at = now() WHERE phone_number = %s",
            (sid, Jsonb(config), phone_number),
        )

    def notify_numbers_changed(self, detail: str = "") -> None:
        """Every router reloads its routing table once this transaction commits."""
        self._conn.execute("SELECT pg_notify(%s, %s)", (NUMBERS_CHANNEL, detail[:200]))

    # ---- API keys
    def insert_api_key(self, client_id: str, issued: IssuedKey, name: str | None) -> ApiKey:
        row = self._conn.execute(
            "INSERT INTO api_keys (client_id, key_hash, hint, name) VALUES (%s, %s, %s, %s)"
            f" RETURNING {_KEY_COLUMNS}",
            (UUID(client_id), issued.key_hash, issued.hint, name),
        ).fetchone()
        assert row is not None
        return _api_key(row)

    def revoke_api_key(self, client_id: str, key_id: str) -> ApiKey | None:
        """Revoke a live key of this client; None if there is none with that id."""
        row = self._conn.execute(
            "UPDATE api_keys SET revoked_at = now()"
            " WHERE id = %s AND client_id = %s AND revoked_at IS NULL"
            f" RETURNING {_KEY_COLUMNS}",
            (UUID(key_id), UUID(client_id)),
        ).fetchone()
        return None if row is None else _api_key(row)

    # ---- audit and outbox
    def audit(self, actor: str, record: AuditRecord) -> None:
        self._conn.execute(
            "INSERT INTO audit_log (actor, action, target_type, target_id, client_id, details)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (
                actor,
                record.action,
                record.target_type,
                record.target_id,
                UUID(record.client_id) if record.client_id else None,
                Jsonb(record.details),
            ),
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """A statement of a module that keeps its own SQL (privacy.py); the rows it touched."""
        return self._conn.execute(sql, params).rowcount

    def enqueue(self, topic: str, key: str, event: events.Event) -> None:
        """Write an event to the outbox; it is published after the commit."""
        events.validate(event.to_dict())
        self._conn.execute(
            "INSERT INTO event_outbox (topic, key, payload) VALUES (%s, %s, %s)",
            (topic, key, event.to_json()),
        )


class SyncTurn:
    """The Twilio sync's session: each step is a short transaction of its own."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def due(self, limit: int) -> list[SyncTarget]:
        """Numbers due for a sync, oldest due first, with what they should be now."""
        with self._conn.transaction():
            rows = self._conn.execute(
                "SELECT s.phone_number, s.version, s.attempts, o.twilio_sid, n.forward_to"
                " FROM twilio_sync s JOIN owned_numbers o USING (phone_number)"
                " LEFT JOIN phone_numbers n USING (phone_number)"
                " WHERE s.due_at <= now() ORDER BY s.due_at, s.phone_number LIMIT %s",
                (limit,),
            ).fetchall()
        return [SyncTarget(*row) for row in rows]

    def synced(self, target: SyncTarget, sid: str, config: dict[str, Any]) -> None:
        """Twilio accepted `config`: remember it, and the request is done unless renewed."""
        with self._conn.transaction():
            self._conn.execute(
                "UPDATE owned_numbers SET twilio_sid = %s, twilio_config = %s,"
                " twilio_synced_at = now() WHERE phone_number = %s",
                (sid, Jsonb(config), target.phone_number),
            )
            self._conn.execute(
                "DELETE FROM twilio_sync WHERE phone_number = %s AND version = %s",
                (target.phone_number, target.version),
            )

    def failed(
        self, target: SyncTarget, error: str, retry_in: float, forget_sid: bool = False
    ) -> None:
        """Try again in `retry_in` seconds (unless a newer request is due sooner)."""
        with self._conn.transaction():
            if forget_sid:
                self._conn.execute(
                    "UPDATE owned_numbers SET twilio_sid = NULL WHERE phone_number = %s",
                    (target.phone_number,),
                )
            self._conn.execute(
                "UPDATE twilio_sync SET attempts = attempts + 1, last_error = %s,"
                " due_at = now() + make_interval(secs => %s)"
                " WHERE phone_number = %s AND version = %s",
                (error[:1000], retry_in, target.phone_number, target.version),
            )


class ChangeListener:
    """A dedicated connection that LISTENs for changes to phone_numbers."""

    def __init__(self, dsn: str) -> None:
        self._conn = psycopg.connect(
            dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS, **_KEEPALIVES
        )
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NUMBERS_CHANNEL)))

    def wait(self, timeout: float) -> bool:
        """True if a change was notified within `timeout`; drains any backlog."""
        changed = False
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            changed = True
        if changed:
            for _ in self._conn.notifies(timeout=0.01):
                pass
        return changed

    def close(self) -> None:
        self._conn.close()


def _settings_values(settings: ClientSettings) -> tuple[Any, ...]:
    return (
        settings.name,
        settings.forward_to,
        settings.timezone,
        settings.recording_enabled,
        settings.recording_disclaimer,
        settings.retention_days,
        settings.delete_from_twilio,
        settings.monthly_revenue,
        settings.value_per_conversion,
        *(
            (thresholds.short_sec, thresholds.long_sec, thresholds.qualified_sec)
            if (thresholds := settings.lead_thresholds)
            else (None, None, None)
        ),
        settings.daily_outbound_cap,
    )


def _client(row: tuple[Any, ...]) -> Client:
    (
        client_id,
        name,
        forward_to,
        timezone,
        recording_enabled,
        disclaimer,
        retention_days,
        delete_from_twilio,
        monthly_revenue,
        value_per_conversion,
        lead_short_sec,
        lead_long_sec,
        lead_qualified_sec,
        daily_outbound_cap,
        created_at,
        updated_at,
    ) = row
    settings = ClientSettings(
        name=name,
        forward_to=forward_to,
        timezone=timezone,
        recording_enabled=recording_enabled,
        recording_disclaimer=disclaimer,
        retention_days=retention_days,
        delete_from_twilio=delete_from_twilio,
        monthly_revenue=monthly_revenue,
        value_per_conversion=value_per_conversion,
        lead_thresholds=(
            None
            if lead_short_sec is None
            else LeadThresholds(lead_short_sec, lead_long_sec, lead_qualified_sec)
        ),
        daily_outbound_cap=daily_outbound_cap,
    )
    return Client(str(client_id), settings, created_at, updated_at)


def _assignment(row: tuple[Any, ...]) -> NumberAssignment:
    phone, client_id, forward_to, record, disclaimer, campaign, assigned_at, zone, flow = row
    return NumberAssignment(
        phone,
        str(client_id),
        forward_to,
        record,
        disclaimer,
        campaign,
        assigned_at,
        zone,
        None if flow is None else _stored_flow(flow, phone),
    )


def _stored_flow(stored: dict[str, Any], phone_number: str) -> Flow | None:
    """A stored flow; one that no longer reads (rules tightened since) routes as before flows.

    One such row must not stop the whole routing table from loading.
    """
    try:
        return Flow.from_json(stored, phone_number)
    except ApiError as err:
        log.error("call flow of %s ignored, it no longer reads: %s", phone_number, err.message)
        return None


def _notifications(row: tuple[Any, ...]) -> Notifications:
    stored, secret = row
    if isinstance(stored, str | bytes):
        stored = json.loads(stored)
    return Notifications.from_json(stored, secret)


def _owned(row: tuple[Any, ...]) -> OwnedNumber:
    (
        phone,
        sid,
        locality,
        region,
        client_id,
        acquired_at,
        pooled_at,
        pending,
        attempts,
        last_error,
        synced_at,
    ) = row
    return OwnedNumber(
        phone,
        sid,
        locality,
        region,
        str(client_id) if client_id else None,
        acquired_at,
        pooled_at,
        TwilioSyncState(pending, attempts or 0, last_error, synced_at),
    )


def _json_or_none(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return dict(value)


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, client_id, name, hint, created_at, revoked_at = row
    return ApiKey(str(key_id), str(client_id), name, hint, created_at, revoked_at)


def _audit(row: tuple[Any, ...]) -> AuditEntry:
    entry_id, at, actor, action, target_type, target_id, client_id, details = row
    if isinstance(details, str | bytes):
        details = json.loads(details)
    return AuditEntry(
        entry_id,
        at,
        actor,
        action,
        target_type,
        target_id,
        str(client_id) if client_id else None,
        details,
    )
