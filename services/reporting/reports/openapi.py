"""The reports' part of reporting's OpenAPI 3 document: paths and schemas of /api/reports.

Reporting's own document (services/reporting/openapi.py) joins these; on
their own, `document()` is a whole document of the reports. Kept true by
tests/reporting/test_reports_api.py, which checks live answers against
these schemas.
"""

from __future__ import annotations

import copy
from typing import Any

from services.reporting.reports.api import DEFAULT_LIMIT, MAX_LIMIT
from services.reporting.reports.periods import PERIODS
from services.reporting.reports.service import STATUSES
from switchboard.openapi import (
    COUNT,
    WHEN,
    Document,
    answer,
    array,
    body,
    closed,
    limit_param,
    nullable,
    operation,
    path_param,
    query_param,
    ref,
    strict,
)
from switchboard.openapi import document as build_document

TAG = "reports"
DAY = {"type": "string", "format": "date"}

REPORT_FIELDS: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid"},
    "clientId": {"type": "string"},
    "period": {"type": "string", "enum": list(PERIODS)},
    "from": DAY,
    "to": DAY,
    "timezone": {"type": "string"},
    "origin": {"type": "string", "enum": ["schedule", "request"]},
    "status": {"type": "string", "enum": list(STATUSES)},
    "attempts": COUNT,
    "lastError": nullable({"type": "string"}),
    "createdAt": WHEN,
    "builtAt": nullable(WHEN),
    "sentAt": nullable(WHEN),
    "recipients": array({"type": "string"}),
}
REPORT = closed(REPORT_FIELDS)

FIGURES: dict[str, Any] = {
    "type": "object",
    "description": (
        "The answers of /api/analytics/summary, timeseries (interval=day), durations, "
        "peak-hours, campaigns and missed-calls for the report's client, UTC bounds and time "
        "zone (`analyticsQuery`), as analytics gave them; `awaitingFollowUp`: the missed calls "
        "whose caller has had no answered call with the client since."
    ),
    "required": [
        "clientId",
        "period",
        "from",
        "to",
        "timezone",
        "analyticsQuery",
        "summary",
        "callsPerDay",
        "durations",
        "peakHours",
        "campaigns",
        "missedCalls",
        "awaitingFollowUp",
    ],
    "properties": {
        "analyticsQuery": {"type": "object"},
        "awaitingFollowUp": array({"type": "object"}),
    },
}

REPORT_WITH_FIGURES = closed({**REPORT_FIELDS, "figures": nullable(ref("ReportFigures"))})

BUILD = strict(
    ["clientId", "period", "from"],
    {
        "clientId": {"type": "string", "minLength": 1},
        "period": {"type": "string", "enum": list(PERIODS)},
        "from": {**DAY, "description": "A Monday for a week, the 1st for a month"},
        "to": {**DAY, "description": "Optional: the period's last day"},
    },
)

SCHEMAS: dict[str, Any] = {
    "Report": REPORT,
    "ReportFigures": FIGURES,
    "ReportWithFigures": REPORT_WITH_FIGURES,
    "ReportBuild": BUILD,
}

REPORT_ID = path_param("reportId", {"type": "string", "format": "uuid"}, "The report's id")


def paths() -> dict[str, Any]:
    one = answer("The report and its figures", ref("ReportWithFigures"))
    return {
        "/api/reports": {
            "get": operation(
                "Reports, newest period first (a client key: its own)",
                {"200": answer("Reports", closed({"reports": array(ref("Report"))}))},
                parameters=[
                    query_param("clientId", {"type": "string"}, "Client"),
                    limit_param(MAX_LIMIT, DEFAULT_LIMIT),
                ],
                tag=TAG,
                error_statuses=(400, 404),
            ),
            "post": operation(
                "Build a client's report of a week or month now (or answer the one that exists)",
                {"201": one, "200": one},
                request=body(ref("ReportBuild")),
                tag=TAG,
                error_statuses=(400, 404, 415),
            ),
        },
        "/api/reports/{reportId}": {
            "get": operation(
                "A report with its figures",
                {"200": one},
                parameters=[REPORT_ID],
                tag=TAG,
                error_statuses=(404,),
            )
        },
        "/api/reports/{reportId}.pdf": {
            "get": operation(
                "The report's PDF (page 1: the charts)",
                {
                    "200": {
                        "description": "PDF",
                        "content": {"application/pdf": {"schema": {"type": "string"}}},
                    }
                },
                parameters=[REPORT_ID],
                tag=TAG,
                error_statuses=(404,),
            )
        },
        "/api/reports/{reportId}.html": {
            "get": operation(
                "The report as HTML, its charts embedded",
                {"200": {"description": "HTML", "content": {"text/html": {"schema": {}}}}},
                parameters=[REPORT_ID],
                tag=TAG,
                error_statuses=(404,),
            )
        },
    }


def document() -> Document:
    return copy.deepcopy(
        build_document(
            "Switchboard reports API",
            "Weekly and monthly client reports: figures, PDF and HTML, and building one now.",
            paths(),
            SCHEMAS,
        )
    )
