"""Numbered, forward-only PostgreSQL migrations, shared by the services that own tables.

A service keeps its migrations as `NNNN_name.sql` files in a folder of its
own and calls `apply_migrations` at start-up. Each file runs in its own
transaction together with its row in the service's `schema_migrations`
table; an advisory lock (one key per service) makes concurrent start-ups wait
for each other instead of racing, so running it twice, or at once, is safe.
`migrate_at_start` is that start-up step: the database must answer first.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


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
        return "(unparsable database URL)"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def check_reachable(dsn: str) -> None:
    """Raise psycopg.OperationalError unless PostgreSQL answers a query."""
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        conn.execute("SELECT 1")


def migrate_at_start(service: str, dsn: str, apply: Callable[[str], Sequence[str]]) -> bool:
    """A service's start-up step: PostgreSQL answers, then `apply` brings its tables up to date.

    False, once stderr says which database did not answer: the service then
    exits with 1, the exit code of an unreachable dependency.
    """
    where = describe_dsn(dsn)
    try:
        check_reachable(dsn)
    except psycopg.OperationalError as err:
        print(f"{service}: PostgreSQL at {where} is not reachable: {err}", file=sys.stderr)
        return False
    applied = apply(dsn)
    log.info("%s: migrations up to date (%d applied now) on %s", service, len(applied), where)
    return True


def load_migrations(folder: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise RuntimeError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(int(match[1]), path.stem, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def apply_migrations(dsn: str, folder: Path, lock_key: int, schema: str | None = None) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied now.

    With `schema`, the record table lives in (and the schema is created as)
    that schema; otherwise in the connection's default schema.
    """
    table = f"{schema}.schema_migrations" if schema else "schema_migrations"
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
        try:
            if schema:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute(f"SELECT version FROM {table}")}
            for migration in load_migrations(folder):
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        f"INSERT INTO {table} (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("migration applied: %s", migration.name)
                applied_now.append(migration.name)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
    return applied_now


def applied_migrations(dsn: str, schema: str | None = None) -> list[tuple[int, str]]:
    table = f"{schema}.schema_migrations" if schema else "schema_migrations"
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        rows = conn.execute(f"SELECT version, name FROM {table} ORDER BY version")
        return [(version, name) for version, name in rows]
