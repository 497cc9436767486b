"""The audit log's entries and the questions an admin may ask of it (pure).

Every mutation of the management API writes one entry (who, what, which
object, when, and the details that matter) in the same transaction as the
change, so there is never a change without its entry nor an entry for a
change that did not happen. `AuditQuery.parse` turns GET /api/audit's query
string into filters, or a 400 saying which one is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.router.directory import iso_utc, parse_client_id
from switchboard.http import invalid_query, query_number, query_text

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR = 2**62


@dataclass(frozen=True)
class AuditRecord:
    """What a change says about itself; the store adds who and when."""

    action: str
    target_type: str
    target_id: str
    client_id: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    client_id: str | None
    details: dict[str, Any]

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
class AuditQuery:
    client_id: str | None = None
    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> AuditQuery:
        known = {
            "clientId",
            "action",
            "actor",
            "targetType",
            "targetId",
            "since",
            "until",
            "before",
            "limit",
        }
        unknown = sorted(set(args) - known)
        if unknown:
            raise invalid_query(", ".join(unknown), "is not a filter of the audit log")
        client_id = None
        if args.get("clientId"):
            client_id = parse_client_id(args["clientId"])
            if client_id is None:
                raise invalid_query("clientId", "must be a client id (a UUID)")
        since, until = moment(args, "since"), moment(args, "until")
        if since and until and since > until:
            raise invalid_query("since", "must not be after until")
        return cls(
            client_id=client_id,
            action=query_text(args, "action"),
            actor=query_text(args, "actor"),
            target_type=query_text(args, "targetType"),
            target_id=query_text(args, "targetId"),
            since=since,
            until=until,
            before=query_number(args, "before", 1, MAX_CURSOR),
            limit=query_number(args, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
        )


def moment(args: Mapping[str, str], name: str) -> datetime | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_query(name, "must be an ISO-8601 time such as 2025-01-31T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise invalid_query(name, "needs a time zone (e.g. Z)")
    return parsed
