"""The read audit: who read which client's calls and metrics, exported or converted them.

Every answered call list, call, CSV export, metric and conversion (and every
read of this audit) is one `AuditEntry`, in the same shape as router's audit
log: who (`Principal.name`), which client the request was scoped to (None:
the admin across all clients), when, and what (the endpoint, the from/to
range asked for, the format). `AuditTrail` buffers entries and writes them
to ClickHouse's append-only `audit_log` about once a second and on close, so
a read costs the request a list append rather than an insert; a listing
flushes first, so the admin sees every read answered before it. The price
is that a process killed outright loses up to a second of entries.
`AuditQuery.parse` turns GET /api/analytics/audit's query string into
filters, or a 400 saying which one is wrong.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.analytics.calls import CallFilter, iso_utc, parse_instant
from switchboard.auth import Principal
from switchboard.http import invalid_query, query_number, query_text

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# Entry ids are microseconds since the epoch: below 2**53, exact in JSON numbers.
MAX_ID = 2**53
FLUSH_SECONDS = 1.0
# Query values are kept in an entry's details up to this length.
MAX_DETAIL_CHARS = 200
# Parameters holding a caller's number: the audit keeps that they were used, not
# the number, which an erasure (services/analytics/privacy.py) could not reach here.
PERSONAL_PARAMETERS = frozenset({"caller"})
REDACTED = "(redacted)"
# Entries kept while ClickHouse cannot take them; past this the oldest go (logged).
MAX_PENDING = 100_000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    client_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_utc(self.at),
            "actor": self.actor,
            "action": self.action,
            "targetType": self.target_type,
            "targetId": self.target_id,
            "clientId": self.client_id,
            "details": self.details,
        }


@dataclass(frozen=True)
class AuditRead:
    """What a request says about itself; the trail adds the id and the time."""

    actor: str
    action: str
    target_type: str
    target_id: str
    client_id: str | None
    details: dict[str, Any]


def read_entry(
    principal: Principal,
    path: str,
    args: Mapping[str, str],
    scope: CallFilter | None = None,
    client_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AuditRead:
    """The audit entry of an answered request to `path`.

    `scope` is the filter a call list or metric ran with (its client and its
    resolved from/to); a call or conversion names its call's `client_id`.
    """
    if path == "/api/calls":
        csv = args.get("format") == "csv"
        action, target_type, target_id = ("calls.exported" if csv else "calls.listed"), "calls", ""
    elif path.startswith("/api/calls/"):
        action, target_type, target_id = "call.read", "call", path.rsplit("/", 1)[1]
    elif path == "/api/analytics/conversions":
        call_sid = str((extra or {}).get("callSid", ""))
        action, target_type, target_id = "conversion.recorded", "call", call_sid
    elif path == "/api/analytics/audit":
        action, target_type, target_id = "audit.read", "audit", ""
    else:
        action, target_type, target_id = "metric.read", "metric", path.rsplit("/", 1)[1]
    details: dict[str, Any] = {
        "endpoint": path,
        "query": {
            name: REDACTED if name in PERSONAL_PARAMETERS else value[:MAX_DETAIL_CHARS]
            for name, value in args.items()
        },
    }
    if scope is not None:
        client_id = scope.client_id
        details["from"] = iso_utc(scope.start) if scope.start else None
        details["to"] = iso_utc(scope.end) if scope.end else None
    if path == "/api/calls":
        details["format"] = args.get("format") or "json"
    details.update(extra or {})
    if client_id is None and not principal.is_admin:
        client_id = principal.client_id
    return AuditRead(principal.name, action, target_type, target_id, client_id, details)


@dataclass(frozen=True)
class AuditQuery:
    client_id: str | None = None
    action: str | None = None
    actor: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    before: int | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> AuditQuery:
        known = {"clientId", "action", "actor", "from", "to", "before", "limit"}
        unknown = sorted(set(args) - known)
        if unknown:
            raise invalid_query(", ".join(unknown), "is not a filter of the audit log")
        start = parse_instant("from", args["from"]) if args.get("from") else None
        end = parse_instant("to", args["to"], end_of_day=True) if args.get("to") else None
        if start is not None and end is not None and start >= end:
            raise invalid_query("from", "must be earlier than to")
        return cls(
            client_id=query_text(args, "clientId"),
            action=query_text(args, "action"),
            actor=query_text(args, "actor"),
            start=start,
            end=end,
            before=query_number(args, "before", 1, MAX_ID),
            limit=query_number(args, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
        )


class AuditTrail:
    """Entries recorded by requests, written in batches by one background thread."""

    def __init__(
        self,
        write: Callable[[Sequence[AuditEntry]], None],
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._write = write
        self._flush_seconds = flush_seconds
        self._pending: list[AuditEntry] = []
        self._pending_lock = threading.Lock()
        # One writer at a time, so entries reach the table in the order recorded.
        self._flush_lock = threading.Lock()
        self._last_id = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="analytics-audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def record(self, read: AuditRead) -> AuditEntry:
        with self._pending_lock:
            # Ids are the time in microseconds, made unique: newest first is id order.
            self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
            entry = AuditEntry(
                id=self._last_id,
                at=datetime.fromtimestamp(self._last_id / 1_000_000, tz=UTC),
                actor=read.actor,
                action=read.action,
                target_type=read.target_type,
                target_id=read.target_id,
                client_id=read.client_id,
                details=read.details,
            )
            self._pending.append(entry)
            if len(self._pending) > MAX_PENDING:
                dropped = len(self._pending) - MAX_PENDING
                del self._pending[:dropped]
                log.error("audit: ClickHouse is not taking entries; dropped %d", dropped)
        return entry

    def flush(self) -> None:
        """Write every entry recorded so far; on failure they stay for the next flush."""
        with self._flush_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._write(batch)
            except Exception:
                with self._pending_lock:
                    self._pending[:0] = batch
                raise

    def close(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stopping.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:  # kept for the next flush; the API goes on answering
                log.exception("audit: writing entries failed; retrying")
