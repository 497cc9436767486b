"""The read audit's table (services/analytics/audit.py decides what goes in)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from services.analytics.audit import AuditEntry, AuditQuery
from services.analytics.store.connection import Connection
from services.analytics.store.sql import from_ms, to_ms


class AuditLog(Connection):
    """Entries of audit_log in and out."""

    def insert_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._insert(
            "audit_log",
            [
                [
                    e.id,
                    e.at,
                    e.actor,
                    e.action,
                    e.target_type,
                    e.target_id,
                    e.client_id or "",
                    orjson.dumps(e.details).decode(),
                ]
                for e in entries
            ],
            ("id", "at", "actor", "action", "targetType", "targetId", "clientId", "details"),
        )

    def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries that match `query`, newest first."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (
            ("clientId", query.client_id),
            ("action", query.action),
            ("actor", query.actor),
        ):
            if value is not None:
                clauses.append(f"{column} = {{{column}:String}}")
                params[column] = value
        if query.start is not None:
            clauses.append("at >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')")
            params["fromMs"] = to_ms(query.start)
        if query.end is not None:
            clauses.append("at < fromUnixTimestamp64Milli({toMs:Int64}, 'UTC')")
            params["toMs"] = to_ms(query.end)
        if query.before is not None:
            clauses.append("id < {before:UInt64}")
            params["before"] = query.before
        rows = self._query(
            "SELECT id, toUnixTimestamp64Milli(at), actor, action, targetType, targetId, "
            f"clientId, details FROM {self.database}.audit_log "
            f"WHERE {' AND '.join(clauses) or '1'} ORDER BY id DESC LIMIT {int(query.limit)}",
            params,
        )
        return [
            AuditEntry(
                id=int(entry_id),
                at=from_ms(int(at_ms)),
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=target_id,
                client_id=client_id or None,
                details=orjson.loads(details),
            )
            for entry_id, at_ms, actor, action, target_type, target_id, client_id, details in rows
        ]
