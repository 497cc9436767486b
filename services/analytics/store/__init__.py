"""Analytics' ClickHouse, split by role; `Store` puts the roles together on one connection.

- `connection`: the client(s) and the lock every statement goes through;
- `schema`: the numbered migrations and the retention TTLs;
- `writes`: what the consumer writes (events, fact versions) and reads back to fold;
- `repair`: mending a write that stopped half way;
- `reference`: number assignments and client settings;
- `queries`: the API's reads of the current calls;
- `audit`: the read audit's table.

These tables commit one by one; `repair` mends a call whose write stopped
half way. Privacy's erasures and retention keep their own SQL in
services/analytics/privacy.py and run it through `Store.execute`.
"""

from __future__ import annotations

from services.analytics.store.audit import AuditLog
from services.analytics.store.connection import connect
from services.analytics.store.queries import ANONYMOUS_CALLERS, CallPage, FollowUp, GeoRow
from services.analytics.store.reference import Reference
from services.analytics.store.repair import Repair, Repairs
from services.analytics.store.schema import (
    MIGRATIONS_DIR,
    Schema,
    migration_files,
    migration_statements,
)
from services.analytics.store.sql import from_ms, to_ms, to_seconds, tz_literal
from services.analytics.store.writes import StoredFact

__all__ = [
    "ANONYMOUS_CALLERS",
    "MIGRATIONS_DIR",
    "CallPage",
    "FollowUp",
    "GeoRow",
    "Repair",
    "Store",
    "StoredFact",
    "connect",
    "from_ms",
    "migration_files",
    "migration_statements",
    "to_ms",
    "to_seconds",
    "tz_literal",
]


class Store(Schema, Repairs, Reference, AuditLog):
    """All of analytics' SQL. Thread-safe; on chDB calls run one at a time."""
