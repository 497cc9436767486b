"""GET /api/audit's filters, parsed from the query string (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.router.audit import DEFAULT_LIMIT, AuditQuery
from switchboard.http import ApiError

CLIENT = "0b6f7d1c-3a55-4f0a-9a39-4d7b8e1f2a10"


def test_no_filters_lists_the_newest_hundred() -> None:
    assert AuditQuery.parse({}) == AuditQuery(limit=DEFAULT_LIMIT)


def test_every_filter_is_read() -> None:
    query = AuditQuery.parse(
        {
            "clientId": CLIENT.upper(),
            "action": "number.assigned",
            "actor": "admin",
            "targetType": "number",
            "targetId": "+14155550100",
            "since": "2025-01-01T00:00:00Z",
            "until": "2025-02-01T00:00:00+01:00",
            "before": "42",
            "limit": "10",
        }
    )
    assert query.client_id == CLIENT
    assert query.since == datetime(2025, 1, 1, tzinfo=UTC)
    assert query.before == 42
    assert query.limit == 10


@pytest.mark.parametrize(
    "args",
    [
        {"clientId": "nope"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"before": "-1"},
        {"since": "yesterday"},
        {"since": "2025-01-01T00:00:00"},
        {"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        {"action": "x" * 201},
        {"who": "admin"},
    ],
)
def test_bad_filters_are_a_400(args: dict[str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        AuditQuery.parse(args)
    assert caught.value.status == 400
