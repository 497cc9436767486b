"""The schema: numbered migrations applied at start-up, and the retention TTLs."""

from __future__ import annotations

import logging
import re
import string
from datetime import UTC, datetime
from pathlib import Path

from services.analytics.store.connection import Connection

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")


# Tables that take a retention TTL, with the time column it counts from.
_RETENTION = (
    ("events", "occurredAt"),
    ("call_facts", "startedAt"),
    ("calls_by_client", "startedAt"),
    ("client_hourly", "hour"),
    ("conversions", "recordedAt"),
)


class Schema(Connection):
    """Migrations and retention."""

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; returns the names applied now."""
        self._command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._command(
            f"CREATE TABLE IF NOT EXISTS {self.database}.schema_migrations "
            "(name String, appliedAt DateTime64(3, 'UTC')) "
            "ENGINE = ReplacingMergeTree ORDER BY name"
        )
        done = {
            row[0] for row in self._query(f"SELECT name FROM {self.database}.schema_migrations")
        }
        applied = []
        for path in migration_files():
            if path.name in done:
                continue
            for statement in migration_statements(path, self.database):
                self._command(statement)
            self._insert(
                "schema_migrations", [[path.name, datetime.now(UTC)]], ("name", "appliedAt")
            )
            log.info("migration %s applied to %s", path.name, self.database)
            applied.append(path.name)
        return applied

    def read_only(self) -> bool:
        """True when ClickHouse lets this connection only read (a `readonly` user)."""
        rows = self._query("SELECT value FROM system.settings WHERE name = 'readonly'")
        return bool(rows) and rows[0][0] not in ("0", 0)

    def check_migrated(self) -> None:
        """Raise unless every migration is applied (a read-only connection cannot apply them)."""
        applied = set(self.applied_migrations())
        missing = [path.name for path in migration_files() if path.name not in applied]
        if missing:
            raise RuntimeError(f"{self.database} lacks migrations {', '.join(missing)}")

    def applied_migrations(self) -> list[str]:
        rows = self._query(
            f"SELECT name FROM {self.database}.schema_migrations FINAL ORDER BY name"
        )
        return [row[0] for row in rows]

    def apply_retention(self, days: int) -> None:
        """Set (days > 0) or remove (0) the TTL that drops rows older than `days` days."""
        rows = self._query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            {"db": self.database},
        )
        engines = {name: engine for name, engine in rows}
        for table, column in _RETENTION:
            has_ttl = " TTL " in engines.get(table, "")
            if days > 0:
                self._command(
                    f"ALTER TABLE {self.database}.{table} "
                    f"MODIFY TTL toDateTime({column}) + INTERVAL {int(days)} DAY"
                )
            elif has_ttl:
                self._command(f"ALTER TABLE {self.database}.{table} REMOVE TTL")
        self.expire_call_state(days)

    def expire_call_state(self, days: int) -> None:
        """Delete from call_state the calls older than `days` days (0: keep all).

        call_state (EmbeddedRocksDB) has no TTL of its own, so the calls that
        call_facts' TTL drops are deleted from it by startedAt, the same
        horizon: at start-up (apply_retention) and periodically by the consumer.
        """
        if days > 0:
            self._command(
                f"DELETE FROM {self.database}.call_state "
                f"WHERE startedAt < now64(3) - INTERVAL {int(days)} DAY"
            )


def migration_files() -> list[Path]:
    files = sorted(p for p in MIGRATIONS_DIR.glob("*.sql"))
    for path in files:
        if not _MIGRATION_NAME.match(path.name):
            raise ValueError(f"migration file name must be NNNN_name.sql: {path.name}")
    return files


def migration_statements(path: Path, database: str) -> list[str]:
    """The file's statements with `${database}` filled in and comments dropped."""
    text = string.Template(path.read_text()).substitute(database=database)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]
