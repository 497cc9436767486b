"""Analytics' OpenAPI 3 document: the call list, its export and the metrics, at /api/openapi.json.

Kept true by tests/analytics/test_openapi_conformance.py (schemathesis
against the live app on chDB). Limits and statuses come from the modules
that enforce them, so the document cannot drift from the checks.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from services.analytics import audit
from services.analytics.calls import (
    DEFAULT_LIMIT,
    GEOGRAPHY_LIMIT,
    MAX_LIMIT,
    MISSED_CALLS_LIMIT,
    TOP_CALLERS_LIMIT,
)
from services.analytics.facts import STATUSES
from switchboard.openapi import (
    COUNT,
    JSON,
    RATE,
    WHEN,
    Document,
    answer,
    array,
    body,
    closed,
    document_path,
    limit_param,
    nullable,
    operation,
    path_param,
    query_param,
    ref,
)
from switchboard.openapi import document as build_document

# What every audit entry holds (audit.py's AuditEntry.to_json).
AUDIT_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "at", "actor", "action", "targetType", "targetId", "clientId", "details"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string", "description": "admin, or client:<id>:key:<keyId>"},
        "action": {"type": "string", "example": "calls.exported"},
        "targetType": {"type": "string"},
        "targetId": {"type": "string"},
        "clientId": nullable({"type": "string"}),
        "details": {"type": "object"},
    },
}

INSTANT = {
    "type": "string",
    "anyOf": [{"format": "date"}, {"format": "date-time"}],
    "description": "ISO 8601 date or date-time; without an offset it is in the request's zone",
    "example": "2024-05-01",
}


FILTER_PARAMS = [
    query_param(
        "clientId",
        {"type": "string"},
        "Only this client's calls (the admin; a client key is pinned to its own)",
    ),
    query_param("tz", {"type": "string", "example": "America/New_York"}, "IANA zone of days"),
    query_param("direction", {"type": "string", "enum": ["inbound", "outbound"]}, "Direction"),
    query_param("status", {"type": "string", "enum": list(STATUSES)}, "Outcome"),
    query_param("campaign", {"type": "string"}, "Campaign (empty: calls without one)"),
    query_param("from", INSTANT, "From (inclusive)"),
    query_param("to", INSTANT, "Before (a bare date includes that whole day)"),
    query_param(
        "minDuration",
        {"type": "integer", "minimum": 0, "maximum": 999_999_999},
        "Talk time of at least this many seconds",
    ),
]

ECHO: dict[str, Any] = {
    "clientId": nullable({"type": "string"}),
    "timezone": {"type": "string"},
    "from": nullable(WHEN),
    "to": nullable(WHEN),
}

CALL_FIELDS: dict[str, Any] = {
    "callSid": {"type": "string"},
    "clientId": nullable({"type": "string"}),
    "direction": {"type": "string", "enum": ["inbound", "outbound"]},
    "from": {"type": "string"},
    "to": {"type": "string"},
    "forwardedTo": nullable({"type": "string"}),
    "status": {"type": "string", "enum": list(STATUSES)},
    "answered": {"type": "boolean"},
    "durationSec": COUNT,
    "startedAt": WHEN,
    "recorded": {"type": "boolean", "description": "Twilio recorded the call"},
    "recordingStored": {"type": "boolean", "description": "Its recording is in our storage"},
    "callerCity": {"type": "string"},
    "callerState": {"type": "string"},
    "callerCountry": {"type": "string"},
    "campaign": nullable({"type": "string"}),
}

VOICEMAIL_FIELDS: dict[str, Any] = closed(
    {
        "recordingSid": {"type": "string"},
        "durationSec": COUNT,
        "recordingUrl": {
            "type": "string",
            "description": "Where the recordings service lists the call's recordings, signed links",
        },
    }
)

TEXT_BACK_FIELDS: dict[str, Any] = closed(
    {
        "to": {"type": "string", "description": "The caller the missed-call text went to"},
        "messageSid": {"type": "string", "description": "Twilio's Message SID"},
        "sentAt": WHEN,
    }
)

SUMMARY_FIELDS: dict[str, Any] = {
    "totalCalls": COUNT,
    "inbound": COUNT,
    "outbound": COUNT,
    "completed": COUNT,
    "missed": COUNT,
    "answered": COUNT,
    "unrouted": COUNT,
    "voicemail": COUNT,
    "totalDurationSec": COUNT,
    "avgDurationSec": RATE,
    "answerRate": {"type": "number", "minimum": 0, "maximum": 1},
}

CAMPAIGN_FIELDS: dict[str, Any] = {
    "clientId": nullable({"type": "string"}),
    "campaign": nullable({"type": "string"}),
    "calls": COUNT,
    "answered": COUNT,
    "qualifiedLeads": COUNT,
    "conversions": COUNT,
    "value": RATE,
    "numbers": COUNT,
    "numberCost": RATE,
    "usageCost": RATE,
    "cost": RATE,
    "roi": nullable({"type": "number"}),
}

SCHEMAS: dict[str, Any] = {
    "Call": closed(CALL_FIELDS),
    "CallDetail": closed(
        {
            **CALL_FIELDS,
            "voicemail": nullable(VOICEMAIL_FIELDS),
            "textBack": nullable(TEXT_BACK_FIELDS),
        }
    ),
    "MissedCall": closed(
        {**CALL_FIELDS, "followedUp": {"type": "boolean"}, "followedUpAt": nullable(WHEN)}
    ),
    "Campaign": closed(CAMPAIGN_FIELDS),
    "AnalyticsAuditEntry": AUDIT_ENTRY,
}


def metric(
    summary: str, fields: dict[str, Any], extra: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    """A GET over the filtered calls whose answer echoes the scope next to `fields`."""
    return {
        "get": operation(
            summary,
            {"200": answer("The figures", closed({**ECHO, **fields}))},
            parameters=[*FILTER_PARAMS, *extra],
            tag="analytics",
            error_statuses=(400, 404),
        )
    }


def analytics_paths() -> dict[str, Any]:
    """The paths analytics serves (services/analytics/app.py)."""
    calls = "calls"
    return {
        **document_path(),
        "/api/calls": {
            "get": operation(
                "Calls, newest first, a page at a time; or every match as CSV",
                {
                    "200": {
                        "description": "A page (JSON) or the export (CSV, a header line first)",
                        "content": {
                            JSON: {
                                "schema": closed(
                                    {
                                        "calls": array(ref("Call")),
                                        "nextCursor": nullable({"type": "string"}),
                                    }
                                )
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    }
                },
                parameters=[
                    *FILTER_PARAMS,
                    limit_param(MAX_LIMIT, DEFAULT_LIMIT),
                    query_param("cursor", {"type": "string"}, "nextCursor of the previous page"),
                    query_param("format", {"type": "string", "enum": ["json", "csv"]}, "json"),
                ],
                tag=calls,
                error_statuses=(400, 404),
            )
        },
        "/api/calls/{callSid}": {
            "parameters": [path_param("callSid", {"type": "string"}, "Twilio's CallSid")],
            "get": operation(
                "One call",
                {"200": answer("The call", ref("CallDetail"))},
                tag=calls,
                error_statuses=(404,),
            ),
        },
        "/api/analytics/summary": metric("Counts and rates", SUMMARY_FIELDS),
        "/api/analytics/timeseries": metric(
            "Counts per hour, day or month, empty buckets included (30 days to now by default)",
            {
                "interval": {"type": "string", "enum": ["hour", "day", "month"]},
                "points": array(
                    closed(
                        {
                            "t": {"type": "string", "description": "Bucket start, zone offset"},
                            "total": COUNT,
                            "inbound": COUNT,
                            "outbound": COUNT,
                            "completed": COUNT,
                            "missed": COUNT,
                            "answered": COUNT,
                            "durationSec": COUNT,
                            "answerRate": RATE,
                        }
                    )
                ),
            },
            (query_param("interval", {"type": "string", "enum": ["hour", "day", "month"]}, "day"),),
        ),
        "/api/analytics/durations": metric(
            "Talk time of answered calls",
            {"calls": COUNT, "totalSec": COUNT, "avgSec": RATE, "medianSec": RATE, "p90Sec": RATE},
        ),
        "/api/analytics/peak-hours": metric(
            "Calls by hour of day, day of week, and both",
            {
                "hours": array(
                    closed(
                        {
                            "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                            "calls": COUNT,
                            "answered": COUNT,
                        }
                    )
                ),
                "days": array(
                    closed(
                        {
                            "dayOfWeek": {"type": "integer", "minimum": 1, "maximum": 7},
                            "name": {"type": "string"},
                            "calls": COUNT,
                        }
                    )
                ),
                "grid": array(
                    closed(
                        {
                            "dayOfWeek": {"type": "integer", "minimum": 1, "maximum": 7},
                            "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                            "calls": COUNT,
                        }
                    )
                ),
                "peakHour": nullable({"type": "integer", "minimum": 0, "maximum": 23}),
                "peakDayOfWeek": nullable({"type": "integer", "minimum": 1, "maximum": 7}),
            },
        ),
        "/api/analytics/top-callers": metric(
            "The busiest callers, and how many callers came back",
            {
                "callers": array(
                    closed(
                        {
                            "number": {"type": "string"},
                            "calls": COUNT,
                            "answered": COUNT,
                            "lastCallAt": WHEN,
                            "firstCallAt": WHEN,
                        }
                    )
                ),
                "uniqueCallers": COUNT,
                "repeatCallers": COUNT,
                "repeatCallerRate": RATE,
                "firstTimeCallers": COUNT,
                "returningCallers": COUNT,
                "firstTimeCalls": COUNT,
                "repeatCalls": COUNT,
            },
            (limit_param(MAX_LIMIT, TOP_CALLERS_LIMIT),),
        ),
        "/api/analytics/geography": metric(
            "Calls by the caller's country, state and city",
            {
                "countries": array(closed({"country": {"type": "string"}, "calls": COUNT})),
                "states": array(
                    closed(
                        {"country": {"type": "string"}, "state": {"type": "string"}, "calls": COUNT}
                    )
                ),
                "cities": array(
                    closed(
                        {
                            "city": {"type": "string"},
                            "state": {"type": "string"},
                            "country": {"type": "string"},
                            "calls": COUNT,
                        }
                    )
                ),
                "unknown": COUNT,
                "total": COUNT,
            },
            (limit_param(MAX_LIMIT, GEOGRAPHY_LIMIT),),
        ),
        "/api/analytics/lead-quality": metric(
            "Decided calls by talk time, and qualified leads",
            {
                "buckets": array(
                    closed(
                        {
                            "label": {"type": "string"},
                            "minSec": COUNT,
                            "maxSec": nullable(COUNT),
                            "calls": COUNT,
                        }
                    )
                ),
                "calls": COUNT,
                "qualifiedLeads": COUNT,
                "qualifiedRate": RATE,
                "thresholds": closed({"shortSec": COUNT, "longSec": COUNT, "qualifiedSec": COUNT}),
            },
        ),
        "/api/analytics/campaigns": metric(
            "Calls, leads, conversions, cost and ROI per campaign",
            {
                "campaigns": array(ref("Campaign")),
                "totals": closed(
                    {
                        "calls": COUNT,
                        "qualifiedLeads": COUNT,
                        "conversions": COUNT,
                        "value": RATE,
                        "cost": RATE,
                        "roi": nullable({"type": "number"}),
                    }
                ),
            },
        ),
        "/api/analytics/missed-calls": metric(
            "Missed calls, each with whether the caller was answered later",
            {"calls": array(ref("MissedCall"))},
            (limit_param(MAX_LIMIT, MISSED_CALLS_LIMIT),),
        ),
        "/api/analytics/conversions": {
            "post": operation(
                "Record that a call converted (value defaults to the client's valuePerConversion)",
                {
                    "201": answer(
                        "Recorded",
                        closed(
                            {
                                "callSid": {"type": "string"},
                                "clientId": {"type": "string"},
                                "campaign": nullable({"type": "string"}),
                                "value": RATE,
                                "recordedAt": WHEN,
                            }
                        ),
                    )
                },
                request=body(
                    {
                        "type": "object",
                        "required": ["callSid"],
                        "properties": {
                            "callSid": {"type": "string", "minLength": 1},
                            "value": nullable({"type": "number", "minimum": 0, "maximum": 1e12}),
                        },
                    }
                ),
                tag=calls,
                error_statuses=(400, 404, 409),
            )
        },
        "/api/analytics/audit": {
            "get": operation(
                "Every answered analytics read, export and conversion, newest first (admin)",
                {
                    "200": answer(
                        "Entries",
                        closed(
                            {
                                "entries": array(ref("AnalyticsAuditEntry")),
                                "nextBefore": nullable(
                                    {
                                        "type": "integer",
                                        "description": "Pass as before= for the next page.",
                                    }
                                ),
                            }
                        ),
                    )
                },
                parameters=[
                    query_param("clientId", {"type": "string"}, "Client the reads were of"),
                    query_param("action", {"type": "string"}, "e.g. calls.exported"),
                    query_param("actor", {"type": "string"}, "e.g. admin"),
                    query_param("from", {"type": "string", "format": "date-time"}, "From"),
                    query_param("to", {"type": "string", "format": "date-time"}, "Before"),
                    query_param(
                        "before",
                        {"type": "integer", "minimum": 1},
                        "Entries with a smaller id (paging)",
                    ),
                    query_param(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": audit.MAX_LIMIT},
                        f"Page size ({audit.DEFAULT_LIMIT})",
                    ),
                ],
                tag="audit",
                error_statuses=(400,),
            )
        },
    }


@lru_cache(maxsize=1)
def _document() -> Document:
    return build_document(
        "Switchboard analytics API",
        "The call list and its CSV export, metrics over the filtered calls, conversions "
        "and the read audit. Send `Authorization: Bearer <token>`: the admin token sees "
        "every client, a client API key only its own.",
        analytics_paths(),
        SCHEMAS,
    )


def document() -> Document:
    """A copy of the document (callers may not change the cached one)."""
    return copy.deepcopy(_document())
