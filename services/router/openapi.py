"""The OpenAPI 3 document of the whole public management API, served at /api/openapi.json.

Written by hand as data, next to the routes it describes, and kept true by a
test that runs schemathesis against the live app: every documented operation
is called with generated requests, and every answer must be documented and
match its schema. Field rules mirror directory.py, outbound.py and audit.py.
Router serves the document, but it also describes the paths the edge sends to
analytics and recordings; each service's own test checks its paths against it.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from services.router.audit import MAX_LIMIT
from services.router.directory import (
    MAX_CAMPAIGN,
    MAX_DAILY_OUTBOUND_CAP,
    MAX_DISCLAIMER,
    MAX_LEAD_SECONDS,
    MAX_MONEY,
    MAX_NAME,
    MAX_RETENTION_DAYS,
)
from services.router.outbound import MAX_MESSAGE

E164 = r"^\+[1-9][0-9]{1,14}$"
AREA_CODE = r"^[2-9][0-9]{2}$"
UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"

JSON = "application/json"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def text(limit: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit, **extra}


def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {JSON: {"schema": schema}}}


ERRORS = {
    400: "Invalid request: the message says which field or parameter and why.",
    401: "No `Authorization: Bearer <token>` header.",
    403: "A token nobody issued, or a client key asking for what only the admin may do.",
    404: "No such object, or one a client key may not see (never told apart).",
    409: "Conflict with the current state (number taken, nothing to buy, nothing to delete).",
    416: "The Range header cannot be served (`Content-Range: bytes */<size>`).",
    429: "A limit is reached (`outbound_cap_reached`: the client's outbound calls for today).",
    502: "Twilio refused the request or could not be reached.",
    503: "A dependency (database, storage, key check, Twilio configuration) is unavailable.",
}


def errors(*statuses: int) -> dict[str, Any]:
    return {str(status): answer(ERRORS[status], ref("Error")) for status in statuses}


def operation(
    summary: str,
    responses: dict[str, Any],
    *,
    public: bool = False,
    parameters: list[dict[str, Any]] | None = None,
    request: dict[str, Any] | None = None,
    tag: str,
    error_statuses: tuple[int, ...] = (),
) -> dict[str, Any]:
    statuses = (401, 403, 503, *error_statuses) if not public else error_statuses
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {**responses, **errors(*sorted(set(statuses)))},
    }
    if public:
        op["security"] = []
    if parameters:
        op["parameters"] = parameters
    if request:
        op["requestBody"] = request
    return op


def path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


CLIENT_ID = path_param("clientId", {"type": "string"}, "The client's id (a UUID).")
PHONE = path_param(
    "phoneNumber",
    {"type": "string", "pattern": E164},
    "One of the client's numbers, E.164 (`+` may be sent as %2B).",
)
KEY_ID = path_param("keyId", {"type": "string"}, "The key's id (a UUID).")

MONEY = {"type": "number", "minimum": 0, "maximum": float(MAX_MONEY)}

CLIENT_FIELDS: dict[str, Any] = {
    "name": text(MAX_NAME, minLength=1, pattern=r"\S"),
    "forwardTo": nullable(
        {
            "type": "string",
            "pattern": E164,
            "description": (
                "Default phone for numbers assigned from now on. Toll fraud: only numbers"
                " of ROUTER_ALLOWED_COUNTRIES, never premium-rate, shared-cost or"
                " satellite numbers (400 number_not_allowed)."
            ),
        }
    ),
    "timezone": nullable(
        {
            "type": "string",
            "description": "IANA zone; null means UTC.",
            "example": "America/Los_Angeles",
        }
    ),
    "recordingEnabled": {"type": "boolean"},
    "recordingDisclaimer": nullable(text(MAX_DISCLAIMER)),
    "retentionDays": nullable({"type": "integer", "minimum": 1, "maximum": MAX_RETENTION_DAYS}),
    "deleteFromTwilio": {"type": "boolean"},
    "monthlyRevenue": nullable(MONEY),
    "valuePerConversion": nullable(
        {**MONEY, "description": "Value of a conversion recorded without one (analytics)."}
    ),
    "leadThresholds": nullable(
        {
            "type": "object",
            "description": (
                "Lead-quality talk times in seconds (analytics): under shortSec is short,"
                " longSec and over is long (shortSec < longSec), qualifiedSec and over is a"
                " qualified lead. null: analytics' defaults."
            ),
            "required": ["shortSec", "longSec", "qualifiedSec"],
            "additionalProperties": False,
            "properties": {
                "shortSec": {"type": "integer", "minimum": 1, "maximum": MAX_LEAD_SECONDS},
                "longSec": {"type": "integer", "minimum": 2, "maximum": MAX_LEAD_SECONDS},
                "qualifiedSec": {"type": "integer", "minimum": 0, "maximum": MAX_LEAD_SECONDS},
            },
        }
    ),
    "dailyOutboundCap": nullable(
        {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_DAILY_OUTBOUND_CAP,
            "description": (
                "Outbound calls the client may place per UTC day; null: the deployment's"
                " ROUTER_DAILY_OUTBOUND_CAP. Only the admin may change it (403 for a client key)."
            ),
        }
    ),
}


def client_output() -> dict[str, Any]:
    properties = copy.deepcopy(CLIENT_FIELDS)
    properties["name"] = {"type": "string"}
    properties["timezone"] = {"type": "string"}
    properties["recordingDisclaimer"] = nullable({"type": "string"})
    properties.update(
        {
            "id": {"type": "string", "format": "uuid"},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
        }
    )
    return {
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Client": client_output(),
    "ClientInput": {
        "type": "object",
        "description": "A whole client (POST, PUT). Fields left out take their defaults.",
        "required": ["name"],
        "properties": CLIENT_FIELDS,
        "additionalProperties": False,
    },
    "ClientPatch": {
        "type": "object",
        "description": "Only the fields given change.",
        "minProperties": 1,
        "properties": CLIENT_FIELDS,
        "additionalProperties": False,
    },
    "Number": {
        "type": "object",
        "required": [
            "phoneNumber",
            "clientId",
            "forwardTo",
            "record",
            "recordingDisclaimer",
            "campaign",
            "assignedAt",
        ],
        "properties": {
            "phoneNumber": {"type": "string"},
            "clientId": {"type": "string", "format": "uuid"},
            "forwardTo": {"type": "string"},
            "record": {
                "type": "boolean",
                "description": "Effective: the number's or its client's.",
            },
            "recordingDisclaimer": nullable({"type": "string"}),
            "campaign": nullable({"type": "string"}),
            "assignedAt": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": False,
    },
    "NumberInput": {
        "type": "object",
        "description": (
            "With phoneNumber: assign that number. Without: take the pool's next number "
            "(in areaCode if given), or buy one when the pool has none."
        ),
        "properties": {
            "phoneNumber": nullable({"type": "string", "pattern": E164}),
            "areaCode": nullable({"type": "string", "pattern": AREA_CODE}),
            "forwardTo": nullable({"type": "string", "pattern": E164}),
            "record": nullable({"type": "boolean", "description": "null follows the client."}),
            "recordingDisclaimer": nullable(text(MAX_DISCLAIMER)),
            "campaign": nullable(text(MAX_CAMPAIGN)),
        },
        "additionalProperties": False,
    },
    "NumberPatch": {
        "type": "object",
        "minProperties": 1,
        "properties": {
            "forwardTo": {"type": "string", "pattern": E164},
            "record": nullable({"type": "boolean"}),
            "recordingDisclaimer": nullable(text(MAX_DISCLAIMER)),
            "campaign": nullable(text(MAX_CAMPAIGN)),
        },
        "additionalProperties": False,
    },
    "OwnedNumber": {
        "type": "object",
        "required": [
            "phoneNumber",
            "sid",
            "locality",
            "region",
            "clientId",
            "status",
            "acquiredAt",
            "twilioSync",
        ],
        "properties": {
            "phoneNumber": {"type": "string"},
            "sid": nullable({"type": "string"}),
            "locality": nullable({"type": "string"}),
            "region": nullable({"type": "string"}),
            "clientId": nullable({"type": "string"}),
            "status": {"type": "string", "enum": ["pooled", "assigned"]},
            "acquiredAt": {"type": "string", "format": "date-time"},
            "twilioSync": {
                "type": "object",
                "description": (
                    "Whether Twilio has the number's current configuration (Voice URL,"
                    " status callback, and the fallback that forwards to the client's"
                    " phone when this deployment is down); pending ones are retried"
                ),
                "required": ["status", "attempts", "lastError", "syncedAt"],
                "properties": {
                    "status": {"type": "string", "enum": ["pending", "synced"]},
                    "attempts": {"type": "integer", "minimum": 0},
                    "lastError": nullable({"type": "string"}),
                    "syncedAt": nullable({"type": "string", "format": "date-time"}),
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "ClientDeleted": {
        "type": "object",
        "required": ["id", "deleted", "purgeAfter"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "deleted": {"const": True},
            "purgeAfter": {
                "type": "string",
                "format": "date-time",
                "description": "When the client's calls, recordings and reports are purged",
            },
        },
        "additionalProperties": False,
    },
    "ApiKey": {
        "type": "object",
        "required": ["keyId", "clientId", "name", "hint", "createdAt", "revokedAt"],
        "properties": {
            "keyId": {"type": "string", "format": "uuid"},
            "clientId": {"type": "string", "format": "uuid"},
            "name": nullable({"type": "string"}),
            "hint": {"type": "string"},
            "createdAt": {"type": "string", "format": "date-time"},
            "revokedAt": nullable({"type": "string", "format": "date-time"}),
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": [
            "id",
            "at",
            "actor",
            "action",
            "targetType",
            "targetId",
            "clientId",
            "details",
        ],
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string", "description": "admin, or client:<id>:key:<keyId>"},
            "action": {"type": "string", "example": "client.updated"},
            "targetType": {"type": "string"},
            "targetId": {"type": "string"},
            "clientId": nullable({"type": "string"}),
            "details": {"type": "object"},
        },
    },
    "AvailableNumber": {
        "type": "object",
        "required": ["phoneNumber", "locality", "region"],
        "properties": {
            "phoneNumber": {"type": "string"},
            "locality": nullable({"type": "string"}),
            "region": nullable({"type": "string"}),
        },
    },
}


def router_paths() -> dict[str, Any]:
    """The paths router serves."""
    clients = "clients"
    numbers = "numbers"
    keys = "api keys"
    twilio = "twilio"
    return {
        "/api/clients": {
            "get": operation(
                "List clients (a client key sees its own only)",
                {
                    "200": answer(
                        "The clients",
                        {
                            "type": "object",
                            "required": ["clients"],
                            "properties": {"clients": {"type": "array", "items": ref("Client")}},
                        },
                    )
                },
                tag=clients,
            ),
            "post": operation(
                "Create a client (admin)",
                {"201": answer("Created", ref("Client"))},
                request=body(ref("ClientInput")),
                tag=clients,
                error_statuses=(400,),
            ),
        },
        "/api/clients/{clientId}": {
            "parameters": [CLIENT_ID],
            "get": operation(
                "A client",
                {"200": answer("The client", ref("Client"))},
                tag=clients,
                error_statuses=(404,),
            ),
            "put": operation(
                "Replace a client's settings",
                {"200": answer("Updated", ref("Client"))},
                request=body(ref("ClientInput")),
                tag=clients,
                error_statuses=(400, 404),
            ),
            "patch": operation(
                "Change some of a client's settings",
                {"200": answer("Updated", ref("Client"))},
                request=body(ref("ClientPatch")),
                tag=clients,
                error_statuses=(400, 404),
            ),
            "delete": operation(
                "Delete a client (admin): its numbers return to the pool, its keys stop working;"
                " its calls, recordings and reports are purged after a grace period",
                {"200": answer("Deleted", ref("ClientDeleted"))},
                tag=clients,
                error_statuses=(404,),
            ),
        },
        "/api/clients/{clientId}/numbers": {
            "parameters": [CLIENT_ID],
            "get": operation(
                "A client's numbers",
                {
                    "200": answer(
                        "The numbers",
                        {
                            "type": "object",
                            "required": ["numbers"],
                            "properties": {"numbers": {"type": "array", "items": ref("Number")}},
                        },
                    )
                },
                tag=numbers,
                error_statuses=(404,),
            ),
            "post": operation(
                "Assign a number (admin): given, from the pool, or bought",
                {"201": answer("Assigned", ref("Number"))},
                request=body(ref("NumberInput")),
                tag=numbers,
                error_statuses=(400, 404, 409, 502),
            ),
        },
        "/api/clients/{clientId}/numbers/{phoneNumber}": {
            "parameters": [CLIENT_ID, PHONE],
            "get": operation(
                "One of a client's numbers",
                {"200": answer("The number", ref("Number"))},
                tag=numbers,
                error_statuses=(404,),
            ),
            "patch": operation(
                "Change a number's campaign, forwardTo or recording",
                {"200": answer("Updated", ref("Number"))},
                request=body(ref("NumberPatch")),
                tag=numbers,
                error_statuses=(400, 404),
            ),
            "delete": operation(
                "Release a number to the pool (admin); routing stops at once",
                {"204": answer("Released")},
                tag=numbers,
                error_statuses=(404,),
            ),
        },
        "/api/clients/{clientId}/api-keys": {
            "parameters": [CLIENT_ID],
            "get": operation(
                "A client's API keys (admin; never the secrets)",
                {
                    "200": answer(
                        "The keys",
                        {
                            "type": "object",
                            "required": ["keys"],
                            "properties": {"keys": {"type": "array", "items": ref("ApiKey")}},
                        },
                    )
                },
                tag=keys,
                error_statuses=(404,),
            ),
            "post": operation(
                "Issue an API key for the client (admin); the key is shown only here",
                {
                    "201": answer(
                        "Issued",
                        {
                            "allOf": [
                                ref("ApiKey"),
                                {
                                    "type": "object",
                                    "required": ["key"],
                                    "properties": {"key": {"type": "string", "pattern": "^sbk_"}},
                                },
                            ]
                        },
                    )
                },
                request=body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"name": nullable(text(100))},
                    },
                    required=False,
                ),
                tag=keys,
                error_statuses=(400, 404),
            ),
        },
        "/api/clients/{clientId}/api-keys/{keyId}": {
            "parameters": [CLIENT_ID, KEY_ID],
            "delete": operation(
                "Revoke an API key (admin)",
                {"204": answer("Revoked")},
                tag=keys,
                error_statuses=(404,),
            ),
        },
        "/api/audit": {
            "get": operation(
                "The audit log, newest first (admin)",
                {
                    "200": answer(
                        "Entries",
                        {
                            "type": "object",
                            "required": ["entries", "nextBefore"],
                            "properties": {
                                "entries": {"type": "array", "items": ref("AuditEntry")},
                                "nextBefore": nullable(
                                    {
                                        "type": "integer",
                                        "description": "Pass as before= for the next page.",
                                    }
                                ),
                            },
                        },
                    )
                },
                parameters=[
                    query_param("clientId", {"type": "string", "format": "uuid"}, "Client"),
                    query_param("action", {"type": "string"}, "e.g. number.assigned"),
                    query_param("actor", {"type": "string"}, "e.g. admin"),
                    query_param("targetType", {"type": "string"}, "client, number, ..."),
                    query_param("targetId", {"type": "string"}, "The object's id"),
                    query_param("since", {"type": "string", "format": "date-time"}, "From"),
                    query_param("until", {"type": "string", "format": "date-time"}, "Before"),
                    query_param(
                        "before",
                        {"type": "integer", "minimum": 1},
                        "Entries with a smaller id (paging)",
                    ),
                    query_param(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        "Page size (100)",
                    ),
                ],
                tag="audit",
                error_statuses=(400,),
            ),
        },
        "/api/privacy/callers/{number}": {
            "parameters": [
                path_param(
                    "number", {"type": "string", "pattern": r"^\+[1-9]\d{6,14}$"}, "E.164"
                )
            ],
            "get": operation(
                "Everything held about a caller (admin; GDPR article 15): calls, recordings"
                " with fresh signed links, alerts sent to them",
                {"200": answer("What is held", {"type": "object"})},
                tag="privacy",
                error_statuses=(400,),
            ),
            "delete": operation(
                "Erase a caller's number from every store (admin; GDPR article 17):"
                " each store's status, done or pending (docs/security.md)",
                {"202": answer("Erased, or under way", {"type": "object"})},
                tag="privacy",
                error_statuses=(400,),
            ),
        },
        "/api/twilio/numbers": {
            "get": operation(
                "Every number held: pooled or assigned (admin)",
                {
                    "200": answer(
                        "The numbers",
                        {
                            "type": "object",
                            "required": ["numbers"],
                            "properties": {
                                "numbers": {"type": "array", "items": ref("OwnedNumber")}
                            },
                        },
                    )
                },
                parameters=[
                    query_param(
                        "status", {"type": "string", "enum": ["pooled", "assigned"]}, "Filter"
                    )
                ],
                tag=twilio,
                error_statuses=(400,),
            ),
        },
        "/api/twilio/purchase-number": {
            "get": operation(
                "Numbers Twilio offers (admin)",
                {
                    "200": answer(
                        "Offers",
                        {
                            "type": "object",
                            "required": ["numbers"],
                            "properties": {
                                "numbers": {"type": "array", "items": ref("AvailableNumber")}
                            },
                        },
                    )
                },
                parameters=[
                    query_param(
                        "areaCode",
                        {"type": "string", "pattern": AREA_CODE},
                        "US area code, e.g. 415",
                    ),
                    query_param(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 30}, "How many (10)"
                    ),
                ],
                tag=twilio,
                error_statuses=(400, 502),
            ),
            "post": operation(
                "Buy a number (admin); it calls this deployment and enters the pool",
                {
                    "201": answer(
                        "Bought",
                        {
                            "type": "object",
                            "required": ["phoneNumber", "sid"],
                            "properties": {
                                "phoneNumber": {"type": "string"},
                                "sid": {"type": "string"},
                                "locality": nullable({"type": "string"}),
                                "region": nullable({"type": "string"}),
                            },
                        },
                    )
                },
                request=body(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "areaCode": nullable({"type": "string", "pattern": AREA_CODE})
                        },
                    }
                ),
                tag=twilio,
                error_statuses=(400, 409, 502),
            ),
        },
        "/api/twilio/make-call": {
            "post": operation(
                "Place an outbound call from one of the client's numbers, saying a message",
                {
                    "201": answer(
                        "Placed",
                        {
                            "type": "object",
                            "required": ["callSid"],
                            "properties": {"callSid": {"type": "string"}},
                        },
                    )
                },
                request=body(
                    {
                        "type": "object",
                        "required": ["fromNumber", "toNumber", "clientId", "message"],
                        "additionalProperties": False,
                        "properties": {
                            "fromNumber": {"type": "string", "pattern": E164},
                            "toNumber": {"type": "string", "pattern": E164},
                            "clientId": {"type": "string", "pattern": UUID},
                            "message": text(MAX_MESSAGE, minLength=1, pattern=r"\S"),
                        },
                    }
                ),
                tag=twilio,
                error_statuses=(400, 404, 429, 502),
            ),
        },
        "/api/openapi.json": {
            "get": operation(
                "This document (no auth)",
                {"200": answer("OpenAPI 3 document", {"type": "object"})},
                public=True,
                tag="meta",
            ),
        },
        "/api/twilio/twiml": {
            "get": operation(
                "TwiML of a make-call call (fetched by Twilio; no auth)",
                {
                    "200": {
                        "description": "TwiML",
                        "content": {"text/xml": {"schema": {"type": "string"}}},
                    }
                },
                public=True,
                parameters=[
                    {
                        **query_param("clientId", {"type": "string", "pattern": UUID}, "Client"),
                        "required": True,
                    },
                    {
                        **query_param("message", text(MAX_MESSAGE, minLength=1), "What to say"),
                        "required": True,
                    },
                ],
                tag=twilio,
                error_statuses=(400, 404, 503),
            ),
        },
    }


# Analytics and recordings are other services (a service never imports another),
# so their limits are restated here; their conformance tests keep them true.
CALL_STATUSES = ["completed", "no-answer", "busy", "failed", "canceled", "unrouted", "in-progress"]
ANALYTICS_MAX_LIMIT = 1000
RECORDING_STATUSES = ["stored", "absent", "failed", "deleted"]
MEDIA_TYPES = ("audio/wav", "audio/mpeg", "application/octet-stream")

INSTANT = {
    "type": "string",
    "anyOf": [{"format": "date"}, {"format": "date-time"}],
    "description": "ISO 8601 date or date-time; without an offset it is in the request's zone",
    "example": "2024-05-01",
}
COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": "number", "minimum": 0}
WHEN = {"type": "string", "format": "date-time"}


def strict(required: list[str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object with exactly these properties, all present unless `required` says otherwise."""
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }


def closed(properties: dict[str, Any]) -> dict[str, Any]:
    """An object whose properties are all always present."""
    return strict(sorted(properties), properties)


def limit_param(default: int) -> dict[str, Any]:
    return query_param(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": ANALYTICS_MAX_LIMIT},
        f"How many ({default})",
    )


FILTER_PARAMS = [
    query_param(
        "clientId",
        {"type": "string"},
        "Only this client's calls (the admin; a client key is pinned to its own)",
    ),
    query_param("tz", {"type": "string", "example": "America/New_York"}, "IANA zone of days"),
    query_param("direction", {"type": "string", "enum": ["inbound", "outbound"]}, "Direction"),
    query_param("status", {"type": "string", "enum": CALL_STATUSES}, "Outcome"),
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
    "status": {"type": "string", "enum": CALL_STATUSES},
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

SUMMARY_FIELDS: dict[str, Any] = {
    "totalCalls": COUNT,
    "inbound": COUNT,
    "outbound": COUNT,
    "completed": COUNT,
    "missed": COUNT,
    "answered": COUNT,
    "unrouted": COUNT,
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

RECORDING_FIELDS: dict[str, Any] = {
    "recordingSid": {"type": "string"},
    "callSid": {"type": "string"},
    "clientId": nullable({"type": "string"}),
    "durationSec": nullable(COUNT),
    "channels": nullable({"type": "integer", "minimum": 1}),
    "bytes": nullable(COUNT),
    "format": nullable({"type": "string"}),
    "sha256": nullable({"type": "string"}),
    "status": {"type": "string", "enum": RECORDING_STATUSES},
    "recordedAt": WHEN,
    "storedAt": nullable(WHEN),
    "twilioCopyDeleted": {"type": "boolean"},
    "playbackUrl": nullable(
        {
            "type": "string",
            "description": "Signed, expiring link (stored only); null after a delete",
        }
    ),
    "downloadUrl": nullable({"type": "string"}),
    "expiresAt": nullable(WHEN),
}

SCHEMAS.update(
    {
        "Call": closed(CALL_FIELDS),
        "MissedCall": closed(
            {**CALL_FIELDS, "followedUp": {"type": "boolean"}, "followedUpAt": nullable(WHEN)}
        ),
        "Campaign": closed(CAMPAIGN_FIELDS),
        "Recording": strict(
            sorted(RECORDING_FIELDS),
            {
                **RECORDING_FIELDS,
                "reason": nullable(
                    {"type": "string", "description": "Why it is absent or failed (those only)"}
                ),
                "deletedAt": nullable({**WHEN, "description": "Deleted ones only"}),
                "deletionReason": nullable({"type": "string"}),
            },
        ),
        "RecordingAuditEntry": closed(
            {
                "id": {"type": "integer"},
                "at": WHEN,
                "who": {
                    "type": "string",
                    "description": "admin, client:<id>:key:<keyId>, link:<by>",
                },
                "action": {"type": "string", "example": "recording.played"},
                "target": {"type": "string"},
                "clientId": nullable({"type": "string"}),
                "detail": {"type": "object"},
            }
        ),
    }
)


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


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def analytics_paths() -> dict[str, Any]:
    """The paths analytics serves (services/analytics/app.py)."""
    calls = "calls"
    return {
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
                    limit_param(50),
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
                {"200": answer("The call", ref("Call"))},
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
            (limit_param(10),),
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
            (limit_param(50),),
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
            (limit_param(100),),
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
                                "entries": array(ref("AuditEntry")),
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
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        "Page size (100)",
                    ),
                ],
                tag="audit",
                error_statuses=(400,),
            )
        },
    }


def recordings_paths() -> dict[str, Any]:
    """The paths recordings serves (services/recordings/app.py)."""
    tag = "recordings"
    recording_sid = path_param("recordingSid", {"type": "string"}, "Twilio's RecordingSid")
    media = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in MEDIA_TYPES}
    return {
        "/api/twilio/recording/{callSid}": {
            "parameters": [path_param("callSid", {"type": "string"}, "Twilio's CallSid")],
            "get": operation(
                "A call's recordings, with signed playback and download links",
                {"200": answer("The recordings", closed({"recordings": array(ref("Recording"))}))},
                tag=tag,
                error_statuses=(404,),
            ),
        },
        "/api/recordings/media/{recordingSid}": {
            "parameters": [recording_sid],
            "get": operation(
                "The audio behind a signed link (no token: the link is the permission)",
                {
                    "200": {"description": "The whole file", "content": media},
                    "206": {"description": "The one byte range asked for", "content": media},
                },
                public=True,
                parameters=[
                    {
                        **query_param("exp", {"type": "integer"}, "Expiry, Unix seconds"),
                        "required": True,
                    },
                    {
                        **query_param(
                            "disposition",
                            {"type": "string", "enum": ["inline", "attachment"]},
                            "Play or download",
                        ),
                        "required": True,
                    },
                    {**query_param("by", {"type": "string"}, "Who minted it"), "required": True},
                    {**query_param("sig", {"type": "string"}, "HMAC-SHA256"), "required": True},
                    {
                        "name": "Range",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "example": "bytes=0-1023"},
                        "description": "One byte range, to seek",
                    },
                ],
                tag=tag,
                error_statuses=(403, 404, 416, 503),
            ),
        },
        "/api/clients/{clientId}/recordings/{recordingSid}": {
            "parameters": [CLIENT_ID, recording_sid],
            "get": operation(
                "One of a client's recordings",
                {"200": answer("The recording", ref("Recording"))},
                tag=tag,
                error_statuses=(404,),
            ),
            "delete": operation(
                "Delete a stored recording (file and Twilio's copy); a tombstone stays",
                {"200": answer("The tombstone", ref("Recording"))},
                tag=tag,
                error_statuses=(404, 409),
            ),
        },
        "/api/clients/{clientId}/recordings/erasure": {
            "parameters": [CLIENT_ID],
            "post": operation(
                "Delete every recording of one caller for the client",
                {
                    "200": answer(
                        "Deleted",
                        closed(
                            {
                                "clientId": {"type": "string"},
                                "deleted": array({"type": "string"}),
                                "count": COUNT,
                            }
                        ),
                    )
                },
                request=body(
                    {
                        "type": "object",
                        "required": ["phoneNumber"],
                        "properties": {"phoneNumber": {"type": "string", "pattern": E164}},
                    }
                ),
                tag=tag,
                error_statuses=(400, 404),
            ),
        },
        "/api/recordings/audit": {
            "get": operation(
                "Every listing, view, link use and deletion, newest first (admin)",
                {
                    "200": answer(
                        "The entries", closed({"entries": array(ref("RecordingAuditEntry"))})
                    )
                },
                parameters=[
                    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "100"),
                    query_param("target", {"type": "string"}, "A call or recording sid"),
                    query_param("clientId", {"type": "string"}, "Client"),
                ],
                tag=tag,
                error_statuses=(400,),
            ),
        },
    }


def paths() -> dict[str, Any]:
    """Every public path of the management API, whichever service serves it."""
    return {**router_paths(), **analytics_paths(), **recordings_paths()}


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Switchboard management API",
            "version": "1",
            "description": (
                "Clients, their Twilio numbers and the number pool, client API keys, the audit "
                "log, buying numbers and placing outbound calls (router); the call list, export "
                "and metrics (analytics); recordings, their signed media links, deletion and "
                "erasure (recordings). Send `Authorization: Bearer "
                "<token>`: the admin token manages everything, a client API key sees only its "
                'client. Errors are JSON: {"error": {"code", "message"}}.'
            ),
        },
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def document() -> dict[str, Any]:
    """A copy of the document (callers may not change the cached one)."""
    return copy.deepcopy(_document())
