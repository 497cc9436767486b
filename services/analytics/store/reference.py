"""Reference data from router's events: number assignments and client settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from services.analytics.clients import ClientSettings
from services.analytics.numbers import NumberAssignment
from services.analytics.store.queries import Queries
from services.analytics.store.sql import from_ms, to_ms


class Reference(Queries):
    """Numbers (who owns which, when) and clients (their settings)."""

    def upsert_assignments(self, assignments: Sequence[NumberAssignment]) -> None:
        rows = [
            [a.phoneNumber, a.assignedAt, a.clientId, a.campaign, a.releasedAt, a.version]
            for a in assignments
        ]
        self._insert(
            "number_assignments",
            rows,
            ("phoneNumber", "assignedAt", "clientId", "campaign", "releasedAt", "version"),
        )

    def load_assignments(
        self, numbers: Iterable[str] | None = None, client_id: str | None = None
    ) -> list[NumberAssignment]:
        """Assignments of these numbers (all when None), of one client when given."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if numbers is not None:
            wanted = sorted(set(numbers))
            if not wanted:
                return []
            clauses.append("phoneNumber IN {numbers:Array(String)}")
            params["numbers"] = wanted
        if client_id is not None:
            clauses.append("clientId = {clientId:String}")
            params["clientId"] = client_id
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            "SELECT phoneNumber, toUnixTimestamp64Milli(assignedAt), clientId, campaign, "
            "toUnixTimestamp64Milli(releasedAt), version "
            f"FROM {self.database}.number_assignments FINAL {where}",
            params,
        )
        return [
            NumberAssignment(
                phoneNumber=number,
                assignedAt=from_ms(assigned),
                clientId=client,
                campaign=campaign,
                releasedAt=from_ms(released) if released is not None else None,
                version=int(version),
            )
            for number, assigned, client, campaign, released, version in rows
        ]

    def calls_to_attribute(self, assignment: NumberAssignment) -> list[str]:
        """CallSids of calls on this number, in its period, that miss a client or campaign."""
        clauses = [
            "((direction != 'outbound' AND toNumber = {number:String}) OR "
            "(direction = 'outbound' AND fromNumber = {number:String}))",
            "startedAt >= fromUnixTimestamp64Milli({assignedMs:Int64}, 'UTC')",
            "disposition != 'unassigned'",
            "(clientId = '' OR (clientId = {clientId:String} AND campaign = ''))",
        ]
        params: dict[str, Any] = {
            "number": assignment.phoneNumber,
            "assignedMs": to_ms(assignment.assignedAt),
            "clientId": assignment.clientId,
        }
        if assignment.releasedAt is not None:
            clauses.append("startedAt < fromUnixTimestamp64Milli({releasedMs:Int64}, 'UTC')")
            params["releasedMs"] = to_ms(assignment.releasedAt)
        rows = self._query(f"SELECT callSid {self._current_sql(clauses)}", params)
        return [row[0] for row in rows]

    def upsert_client_settings(self, settings: Sequence[ClientSettings]) -> None:
        rows = [
            [
                s.clientId,
                s.name,
                s.timezone,
                s.valuePerConversion,
                s.leadShortSec,
                s.leadLongSec,
                s.leadQualifiedSec,
                int(s.deleted),
                s.version,
                s.retentionDays,
                s.purgeAfter,
            ]
            for s in settings
        ]
        self._insert(
            "client_settings",
            rows,
            (
                "clientId",
                "name",
                "timezone",
                "valuePerConversion",
                "leadShortSec",
                "leadLongSec",
                "leadQualifiedSec",
                "deleted",
                "version",
                "retentionDays",
                "purgeAfter",
            ),
        )

    def client_settings(self, client_id: str | None = None) -> dict[str, ClientSettings]:
        """Settings by clientId: of one client when given, else of every client."""
        where = "WHERE clientId = {clientId:String}" if client_id is not None else ""
        rows = self._query(
            "SELECT clientId, name, timezone, valuePerConversion, leadShortSec, leadLongSec, "
            f"leadQualifiedSec, deleted, version, retentionDays, purgeAfter "
            f"FROM {self.database}.client_settings FINAL {where}",
            {"clientId": client_id} if client_id is not None else {},
        )
        found = {}
        for row in rows:
            client, name, tz, value, short, long, qualified, deleted, version = row[:9]
            retention_days, purge_after = row[9:]
            found[client] = ClientSettings(
                clientId=client,
                name=name,
                timezone=tz,
                valuePerConversion=value,
                leadShortSec=short,
                leadLongSec=long,
                leadQualifiedSec=qualified,
                deleted=bool(deleted),
                version=int(version),
                retentionDays=retention_days,
                purgeAfter=purge_after,
            )
        return found
