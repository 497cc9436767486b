"""The recordings service's PostgreSQL: its own schema `recordings`, and all of its SQL.

Migrations are numbered, forward-only files in `migrations/`, applied at
start-up under an advisory lock and recorded in `recordings.schema_migrations`,
so several processes may start at once and a second run changes nothing.
One row per RecordingSid (the primary key) is what makes the worker
idempotent: inserting a stored copy is ON CONFLICT DO NOTHING, except that
a row that failed earlier may be upgraded by a later successful download.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from services.recordings.metadata import (
    CALL,
    AuditEntry,
    ClientSettings,
    Recording,
    StoredCopy,
)
from services.recordings.retention import Candidate
from switchboard import pg_migrations
from switchboard.pg_migrations import (
    CONNECT_TIMEOUT_SECONDS,
    Migration,
    load_migrations,
)

log = logging.getLogger(__name__)

SCHEMA = "recordings"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_lock key for "recordings migrations"; unique to this store.
MIGRATION_LOCK_KEY = 0x5245434F5244494E

_RECORDING_COLUMNS = (
    "recording_sid, call_sid, client_id, status, twilio_status, duration_sec, channels,"
    " format, bytes, sha256, storage_key, failure_reason, error_code, recorded_at,"
    " created_at, twilio_deleted_at, deleted_at, deleted_by, deletion_reason, kind"
)


def migrations() -> list[Migration]:
    return load_migrations(MIGRATIONS_DIR)


def apply_migrations(dsn: str) -> list[str]:
    """Apply recordings's migrations not yet recorded; return the names applied now."""
    return pg_migrations.apply_migrations(dsn, MIGRATIONS_DIR, MIGRATION_LOCK_KEY, schema=SCHEMA)


def applied_migrations(dsn: str) -> list[tuple[int, str]]:
    return pg_migrations.applied_migrations(dsn, schema=SCHEMA)


def open_pool(dsn: str, max_size: int = 8) -> ConnectionPool:
    """A pool that connects in the background: a down database fails requests, not start-up."""
    pool: ConnectionPool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_SECONDS,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        check=ConnectionPool.check_connection,
        name="recordings",
        open=False,
    )
    pool.open(wait=False)
    return pool


class Store:
    """Calls, client settings, recordings and the audit trail, through a connection pool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @classmethod
    def open(cls, dsn: str, max_size: int = 8) -> Store:
        return cls(open_pool(dsn, max_size))

    def close(self) -> None:
        self._pool.close()

    def ping(self, timeout: float) -> None:
        with self._pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    # -- what the call events taught us ---------------------------------------

    def record_call_routed(self, call_sid: str, client_id: str | None, at: datetime) -> None:
        """Remember the call's client; recordings stored before this learn it too."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO recordings.calls (call_sid, client_id, routed_at)"
                " VALUES (%s, %s, %s)"
                " ON CONFLICT (call_sid) DO UPDATE SET"
                " client_id = COALESCE(EXCLUDED.client_id, recordings.calls.client_id),"
                " routed_at = EXCLUDED.routed_at, updated_at = now()",
                (call_sid, client_id, at),
            )
            if client_id is not None:
                conn.execute(
                    "UPDATE recordings.recordings SET client_id = %s"
                    " WHERE call_sid = %s AND client_id IS NULL",
                    (client_id, call_sid),
                )

    def record_call_received(self, call_sid: str, caller: str, at: datetime) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO recordings.calls (call_sid, caller, received_at)"
                " VALUES (%s, %s, %s)"
                " ON CONFLICT (call_sid) DO UPDATE SET"
                " caller = EXCLUDED.caller, received_at = EXCLUDED.received_at,"
                " updated_at = now()",
                (call_sid, caller, at),
            )

    def call_client(self, call_sid: str) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT client_id FROM recordings.calls WHERE call_sid = %s", (call_sid,)
            ).fetchone()
        return None if row is None else row[0]

    def save_client_settings(
        self, settings: ClientSettings, event_id: str, changed_at: datetime
    ) -> bool:
        """Keep the settings unless newer ones are already stored; True if saved."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO recordings.client_settings"
                " (client_id, recording_enabled, retention_days, delete_from_twilio,"
                "  event_id, changed_at, purge_after)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (client_id) DO UPDATE SET"
                " recording_enabled = EXCLUDED.recording_enabled,"
                " retention_days = EXCLUDED.retention_days,"
                " delete_from_twilio = EXCLUDED.delete_from_twilio,"
                " purge_after = EXCLUDED.purge_after,"
                " event_id = EXCLUDED.event_id, changed_at = EXCLUDED.changed_at,"
                " updated_at = now()"
                " WHERE recordings.client_settings.changed_at <= EXCLUDED.changed_at"
                " RETURNING client_id",
                (
                    settings.client_id,
                    settings.recording_enabled,
                    settings.retention_days,
                    settings.delete_from_twilio,
                    event_id,
                    changed_at,
                    settings.purge_after,
                ),
            ).fetchone()
        return row is not None

    def purges_due(self, now: datetime) -> list[str]:
        """Deleted clients whose purge is due and who still have recordings or calls."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT s.client_id FROM recordings.client_settings s"
                " WHERE s.purge_after <= %s AND (EXISTS ("
                "  SELECT 1 FROM recordings.recordings r"
                "  WHERE r.client_id = s.client_id AND r.status = 'stored')"
                " OR EXISTS (SELECT 1 FROM recordings.calls c WHERE c.client_id = s.client_id))"
                " ORDER BY s.client_id",
                (now,),
            ).fetchall()
        return [row[0] for row in rows]

    def client_recordings(self, client_id: str) -> list[Recording]:
        """The client's stored recordings."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_RECORDING_COLUMNS} FROM recordings.recordings"
                " WHERE client_id = %s AND status = 'stored' ORDER BY recorded_at",
                (client_id,),
            ).fetchall()
        return [_recording(row) for row in rows]

    def forget_client_calls(self, client_id: str) -> int:
        """A purged client's calls (and their callers' numbers) forgotten; how many."""
        with self._pool.connection() as conn:
            return conn.execute(
                "DELETE FROM recordings.calls WHERE client_id = %s", (client_id,)
            ).rowcount

    def client_settings(self, client_id: str) -> ClientSettings | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT client_id, recording_enabled, retention_days, delete_from_twilio"
                " FROM recordings.client_settings WHERE client_id = %s",
                (client_id,),
            ).fetchone()
        return None if row is None else ClientSettings(row[0], row[1], row[2], row[3])

    # -- recordings ------------------------------------------------------------------

    def recording(self, recording_sid: str) -> Recording | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_RECORDING_COLUMNS} FROM recordings.recordings WHERE recording_sid = %s",
                (recording_sid,),
            ).fetchone()
        return None if row is None else _recording(row)

    def recordings_of_call(self, call_sid: str) -> list[Recording]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_RECORDING_COLUMNS} FROM recordings.recordings"
                " WHERE call_sid = %s ORDER BY recorded_at, recording_sid",
                (call_sid,),
            ).fetchall()
        return [_recording(row) for row in rows]

    def insert_stored(self, copy: StoredCopy) -> bool:
        """Record a verified copy; True if this call recorded it (False: already there).

        A row left `failed` by an earlier attempt is upgraded; a stored or
        deleted row is never touched.
        """
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO recordings.recordings"
                " (recording_sid, call_sid, client_id, status, twilio_status, duration_sec,"
                "  channels, format, bytes, sha256, storage_key, recorded_at, kind)"
                " VALUES (%s, %s, %s, 'stored', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (recording_sid) DO UPDATE SET"
                " status = 'stored', client_id = COALESCE(recordings.recordings.client_id,"
                "  EXCLUDED.client_id), twilio_status = EXCLUDED.twilio_status,"
                " duration_sec = EXCLUDED.duration_sec, channels = EXCLUDED.channels,"
                " format = EXCLUDED.format, bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256,"
                " storage_key = EXCLUDED.storage_key, failure_reason = NULL, error_code = NULL"
                " WHERE recordings.recordings.status = 'failed'"
                "   AND recordings.recordings.twilio_status = 'completed'"
                " RETURNING recording_sid",
                (
                    copy.recording_sid,
                    copy.call_sid,
                    copy.client_id,
                    copy.twilio_status,
                    copy.duration_sec,
                    copy.channels,
                    copy.format,
                    copy.bytes,
                    copy.sha256,
                    copy.storage_key,
                    copy.recorded_at,
                    copy.kind,
                ),
            ).fetchone()
        return row is not None

    def insert_not_stored(
        self,
        recording_sid: str,
        call_sid: str,
        client_id: str | None,
        status: str,
        twilio_status: str,
        reason: str,
        error_code: str | None,
        duration_sec: int | None,
        channels: int | None,
        recorded_at: datetime,
        kind: str = CALL,
    ) -> bool:
        """Record an absent or failed recording; True if new (never replaces a row)."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO recordings.recordings"
                " (recording_sid, call_sid, client_id, status, twilio_status, failure_reason,"
                "  error_code, duration_sec, channels, recorded_at, kind)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (recording_sid) DO NOTHING RETURNING recording_sid",
                (
                    recording_sid,
                    call_sid,
                    client_id,
                    status,
                    twilio_status,
                    reason,
                    error_code,
                    duration_sec,
                    channels,
                    recorded_at,
                    kind,
                ),
            ).fetchone()
        return row is not None

    def mark_twilio_deleted(self, recording_sid: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE recordings.recordings SET twilio_deleted_at = now()"
                " WHERE recording_sid = %s AND twilio_deleted_at IS NULL",
                (recording_sid,),
            )

    def mark_deleted(self, recording_sid: str, by: str, reason: str) -> Recording | None:
        """Turn a stored recording into a tombstone; None if it was not stored."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "UPDATE recordings.recordings SET status = 'deleted', deleted_at = now(),"
                " deleted_by = %s, deletion_reason = %s"
                " WHERE recording_sid = %s AND status = 'stored'"
                f" RETURNING {_RECORDING_COLUMNS}",
                (by, reason, recording_sid),
            ).fetchone()
        return None if row is None else _recording(row)

    def retention_candidates(self) -> list[Candidate]:
        """Every stored recording with its client's retention setting (if any arrived)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT r.recording_sid, r.client_id, r.recorded_at, s.retention_days,"
                " s.client_id IS NOT NULL"
                " FROM recordings.recordings r"
                " LEFT JOIN recordings.client_settings s ON s.client_id = r.client_id"
                " WHERE r.status = 'stored' ORDER BY r.recorded_at"
            ).fetchall()
        return [Candidate(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    def twilio_copies_to_delete(self, default_delete: bool, limit: int = 100) -> list[Recording]:
        """Recordings whose Twilio copy should be gone but is not known to be.

        Tombstones always; stored ones when their client (or the default, for
        clients without settings) says to delete Twilio's copy.
        """
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('r.' + c.strip() for c in _RECORDING_COLUMNS.split(','))}"
                " FROM recordings.recordings r"
                " LEFT JOIN recordings.client_settings s ON s.client_id = r.client_id"
                " WHERE r.twilio_deleted_at IS NULL AND r.storage_key IS NOT NULL"
                "   AND (r.status = 'deleted'"
                "        OR (r.status = 'stored'"
                "            AND COALESCE(s.delete_from_twilio, %s)))"
                " ORDER BY r.created_at LIMIT %s",
                (default_delete, limit),
            ).fetchall()
        return [_recording(row) for row in rows]

    def caller_recordings(self, client_id: str, phone_number: str) -> list[Recording]:
        """The client's stored recordings of calls from `phone_number`."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('r.' + c.strip() for c in _RECORDING_COLUMNS.split(','))}"
                " FROM recordings.recordings r"
                " JOIN recordings.calls c ON c.call_sid = r.call_sid"
                " WHERE r.client_id = %s AND c.caller = %s AND r.status = 'stored'"
                " ORDER BY r.recorded_at",
                (client_id, phone_number),
            ).fetchall()
        return [_recording(row) for row in rows]

    def caller_recordings_everywhere(self, phone_number: str) -> list[Recording]:
        """Every client's recordings (stored or not) of calls from `phone_number`."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('r.' + c.strip() for c in _RECORDING_COLUMNS.split(','))}"
                " FROM recordings.recordings r"
                " JOIN recordings.calls c ON c.call_sid = r.call_sid"
                " WHERE c.caller = %s ORDER BY r.recorded_at",
                (phone_number,),
            ).fetchall()
        return [_recording(row) for row in rows]

    def remember_erased(self, token: str) -> None:
        """An erased caller's token: calls from that number are stored under it from now on."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO recordings.erased_callers (token) VALUES (%s)"
                " ON CONFLICT (token) DO NOTHING",
                (token,),
            )

    def is_erased(self, token: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM recordings.erased_callers WHERE token = %s", (token,)
            ).fetchone()
        return row is not None

    def forget_caller_everywhere(self, phone_number: str) -> int:
        """Erase the caller's number from every call, whichever client; how many had it."""
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE recordings.calls SET caller = NULL, updated_at = now() WHERE caller = %s",
                (phone_number,),
            )
            return cursor.rowcount

    def forget_caller(self, client_id: str, phone_number: str) -> int:
        """Erase the caller's number from the client's calls; how many calls had it."""
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE recordings.calls SET caller = NULL, updated_at = now()"
                " WHERE client_id = %s AND caller = %s",
                (client_id, phone_number),
            )
            return cursor.rowcount

    # -- audit -------------------------------------------------------------------------

    def audit(
        self,
        who: str,
        action: str,
        target: str,
        client_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO recordings.audit (who, action, target, client_id, detail)"
                " VALUES (%s, %s, %s, %s, %s)",
                (who, action, target, client_id, Jsonb(detail or {})),
            )

    def audit_log(
        self, limit: int = 100, target: str | None = None, client_id: str | None = None
    ) -> list[AuditEntry]:
        clauses, params = [], []
        if target is not None:
            clauses.append("target = %s")
            params.append(target)
        if client_id is not None:
            clauses.append("client_id = %s")
            params.append(client_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, at, who, action, target, client_id, detail FROM recordings.audit"
                f"{where} ORDER BY id DESC LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [AuditEntry(*row) for row in rows]


def _recording(row: tuple[Any, ...]) -> Recording:
    return Recording(*row)
