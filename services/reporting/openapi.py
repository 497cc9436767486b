"""Reporting's OpenAPI 3 document, at /api/openapi.json: client reports and alert deliveries.

The reports' paths and schemas come from services/reporting/reports/openapi.py,
beside their routes; the admin's view of missed-call alert deliveries is
described here. devstack/apidocs.py merges this document with the other
services' for the edge.
"""

from __future__ import annotations

import copy
from typing import Any

from services.reporting.reports import openapi as reports
from switchboard.openapi import (
    Document,
    answer,
    array,
    limit_param,
    nullable,
    operation,
    query_param,
    ref,
)
from switchboard.openapi import document as build_document

DELIVERY_STATUSES = ["pending", "sending", "delivered", "dead"]

DELIVERY: dict[str, Any] = {
    "type": "object",
    "required": ["callSid", "channel", "recipient", "status", "attempts"],
    "properties": {
        "callSid": {"type": "string"},
        "channel": {"type": "string"},
        "recipient": {"type": "string"},
        "clientId": nullable({"type": "string"}),
        "alertId": nullable({"type": "string"}),
        "status": {"type": "string", "enum": DELIVERY_STATUSES},
        "attempts": {"type": "integer", "minimum": 0},
        "firstAttemptAt": nullable({"type": "string"}),
        "lastError": nullable({"type": "string"}),
        "notBefore": nullable({"type": "string"}),
        "deliveredAt": nullable({"type": "string"}),
        "createdAt": nullable({"type": "string"}),
    },
}


def paths() -> dict[str, Any]:
    return {
        **reports.paths(),
        "/api/reporting/deliveries": {
            "get": operation(
                "Missed-call alert deliveries (the admin's view), newest first",
                {
                    "200": answer(
                        "Deliveries",
                        {
                            "type": "object",
                            "required": ["deliveries"],
                            "properties": {"deliveries": array(ref("AlertDelivery"))},
                        },
                    )
                },
                parameters=[
                    query_param("status", {"type": "string", "enum": DELIVERY_STATUSES}, "Status"),
                    query_param("clientId", {"type": "string"}, "Client"),
                    query_param("callSid", {"type": "string"}, "Call"),
                    limit_param(1000, 100),
                ],
                tag="reporting",
                error_statuses=(400,),
            )
        },
    }


def document() -> Document:
    return copy.deepcopy(
        build_document(
            "Switchboard reporting API",
            "Weekly and monthly client reports (figures, PDF, HTML, building one now) and the "
            "admin's view of missed-call alert deliveries. Send `Authorization: Bearer "
            "<token>`: the admin token sees every client, a client API key only its own reports.",
            paths(),
            {**reports.SCHEMAS, "AlertDelivery": DELIVERY},
        )
    )
