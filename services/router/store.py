"""The router's PostgreSQL: migrations, clients, numbers and change notices.

All of the router's SQL lives here. Migrations are numbered, forward-only
files in `migrations/`, applied under an advisory lock and recorded in
`schema_migrations`, so any number of processes may run them at once. Every
write to `phone_numbers` sends NOTIFY on `NUMBERS_CHANNEL` in its own
transaction; `ChangeListener` is the LISTEN side that keeps each process's
in-memory routing table fresh.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from services.router.directory import Client, NewAssignment, NewClient, NumberAssignment

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
NUMBERS_CHANNEL = "router_numbers_changed"
# pg_advisory_lock key: "router migrations", any constant unique to this store.
MIGRATION_LOCK_KEY = 0x524F555445524D47
CONNECT_TIMEOUT_SECONDS = 5
_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# Keep an idle LISTEN connection honest: a dead server is noticed in ~25 s.
_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

_CLIENT_COLUMNS = "id, name, forward_to, timezone, created_at"
_NUMBER_COLUMNS = (
    "phone_number, client_id, forward_to, record, recording_disclaimer, campaign, assigned_at"
)


class NumberTaken(Exception):
    """The phone number is already assigned to a client."""


class ClientNotFound(Exception):
    """No client has the given id."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a DSN, without credentials, for messages."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable DATABASE_URL)"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def check_reachable(dsn: str) -> None:
    """Raise psycopg.OperationalError unless PostgreSQL answers a query."""
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        conn.execute("SELECT 1")


def migrations() -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise RuntimeError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(int(match[1]), path.stem, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def apply_migrations(dsn: str) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied now.

    Each migration runs in its own transaction together with its record in
    schema_migrations. The advisory lock makes concurrent runs (several
    workers starting at once) wait for each other instead of racing.
    """
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("migration applied: %s", migration.name)
                applied_now.append(migration.name)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def applied_migrations(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(version, name) for version, name in rows]


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
    """Clients and numbers in PostgreSQL, through a connection pool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def close(self) -> None:
        self._pool.close()

    def ping(self, timeout: float) -> None:
        with self._pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    def create_client(self, new: NewClient) -> Client:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"INSERT INTO clients (name, forward_to, timezone) VALUES (%s, %s, %s)"
                f" RETURNING {_CLIENT_COLUMNS}",
                (new.name, new.forward_to, new.timezone),
            ).fetchone()
        assert row is not None
        return _client(row)

    def list_clients(self) -> list[Client]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM clients ORDER BY created_at, id"
            ).fetchall()
        return [_client(row) for row in rows]

    def get_client(self, client_id: str) -> Client | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE id = %s", (UUID(client_id),)
            ).fetchone()
        return None if row is None else _client(row)

    def assign_number(
        self, client_id: str, new: NewAssignment, forward_to: str
    ) -> NumberAssignment:
        """Assign a number to a client and notify every router, in one transaction.

        Raises NumberTaken if any client already holds the number.
        """
        with self._pool.connection() as conn, _translate_fk(client_id), conn.transaction():
            row = conn.execute(
                "INSERT INTO phone_numbers"
                " (phone_number, client_id, forward_to, record, recording_disclaimer, campaign)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (phone_number) DO NOTHING RETURNING {_NUMBER_COLUMNS}",
                (
                    new.phone_number,
                    UUID(client_id),
                    forward_to,
                    new.record,
                    new.recording_disclaimer,
                    new.campaign,
                ),
            ).fetchone()
            if row is None:
                raise NumberTaken(new.phone_number)
            conn.execute("SELECT pg_notify(%s, %s)", (NUMBERS_CHANNEL, new.phone_number))
        return _assignment(row)

    def list_numbers(self, client_id: str) -> list[NumberAssignment]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_NUMBER_COLUMNS} FROM phone_numbers WHERE client_id = %s"
                " ORDER BY assigned_at, phone_number",
                (UUID(client_id),),
            ).fetchall()
        return [_assignment(row) for row in rows]

    def all_assignments(self) -> list[NumberAssignment]:
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT {_NUMBER_COLUMNS} FROM phone_numbers").fetchall()
        return [_assignment(row) for row in rows]


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


@contextmanager
def _translate_fk(client_id: str) -> Iterator[None]:
    try:
        yield
    except psycopg.errors.ForeignKeyViolation:
        raise ClientNotFound(client_id) from None


def _client(row: tuple[Any, ...]) -> Client:
    client_id, name, forward_to, timezone, created_at = row
    return Client(str(client_id), name, forward_to, timezone, created_at)


def _assignment(row: tuple[Any, ...]) -> NumberAssignment:
    phone, client_id, forward_to, record, disclaimer, campaign, assigned_at = row
    return NumberAssignment(
        phone, str(client_id), forward_to, record, disclaimer, campaign, assigned_at
    )
