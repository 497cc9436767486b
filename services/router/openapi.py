"""Router's OpenAPI 3 document: the management API it serves, at /api/openapi.json.

Written by hand as data, next to the routes it describes, and kept true by
tests/router/test_openapi.py, which runs schemathesis against the live app:
every documented operation is called with generated requests, and every
answer must be documented and match its schema. Field rules mirror
directory.py, flows.py, notifications.py, outbound.py and audit.py.
Analytics, recordings and ingress describe their own paths; the edge serves
all of them merged.
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
from services.router.flows import (
    DAYS,
    MAX_CLOSED_DATES,
    MAX_COOLDOWN_HOURS,
    MAX_RANGES_PER_DAY,
    MAX_SAY,
    MAX_TARGETS,
    MAX_TEXT_BACK,
    MAX_TIMEOUT_SEC,
    MAX_VOICEMAIL_SEC,
    MIN_TIMEOUT_SEC,
)
from services.router.notifications import MAX_EMAIL, MAX_RECIPIENTS, MAX_URL
from services.router.outbound import MAX_MESSAGE
from switchboard.openapi import (
    CLIENT_ID,
    E164,
    Document,
    answer,
    body,
    document_path,
    nullable,
    operation,
    path_param,
    query_param,
    ref,
    text,
)
from switchboard.openapi import document as build_document

AREA_CODE = r"^[2-9][0-9]{2}$"
UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"

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


CLOCK = {"type": "string", "pattern": r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"}
DIALED = {
    "type": "string",
    "pattern": E164,
    "description": "Dialed by router: only numbers of ROUTER_ALLOWED_COUNTRIES, never costly"
    " ones, never the number itself (400 number_not_allowed or invalid_field).",
}


XML_ANSWER = {"description": "TwiML", "content": {"text/xml": {"schema": {"type": "string"}}}}
TWILIO_FORM = {
    "required": False,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"Digits": {"type": "string"}}}
        }
    },
}


def flow_schema() -> dict[str, Any]:
    """A number's call flow, as flows.py reads it; every field optional, null as if absent."""
    day = {
        "type": "array",
        "maxItems": MAX_RANGES_PER_DAY,
        "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": CLOCK},
        "description": "Open ranges [start, end), not overlapping; a day not given is closed.",
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "description": (
            "How the number's calls are handled. `{}` (or no flow): forwarded as without flows."
            " A change applies from the next call on."
        ),
        "properties": {
            "businessHours": nullable(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "In the client's time zone. Without it: always in hours.",
                    "properties": {
                        "weekly": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {name: day for name in DAYS},
                        },
                        "closedDates": {
                            "type": "array",
                            "maxItems": MAX_CLOSED_DATES,
                            "items": {"type": "string", "format": "date"},
                        },
                    },
                }
            ),
            "ring": nullable(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["targets"],
                    "description": "Without it: the number's forwardTo rings.",
                    "properties": {
                        "strategy": {"enum": ["simultaneous", "sequential"]},
                        "targets": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_TARGETS,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["number"],
                                "properties": {
                                    "number": DIALED,
                                    "timeoutSec": {
                                        "type": "integer",
                                        "minimum": MIN_TIMEOUT_SEC,
                                        "maximum": MAX_TIMEOUT_SEC,
                                    },
                                },
                            },
                        },
                    },
                }
            ),
            "whisper": nullable(
                text(MAX_SAY, description="Said to whoever answers; {campaign} is replaced.")
            ),
            "screening": nullable(
                {"type": "boolean", "description": "The answerer must press 1 to take the call."}
            ),
            "afterHours": nullable({"enum": ["voicemail", "forward"]}),
            "afterHoursNumber": nullable(
                {**DIALED, "description": 'Required when afterHours is "forward".'}
            ),
            "voicemail": nullable(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "greeting": nullable(text(MAX_SAY)),
                        "maxLengthSec": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_VOICEMAIL_SEC,
                        },
                    },
                }
            ),
            "textBack": nullable(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["message"],
                    "properties": {
                        "message": text(MAX_TEXT_BACK, minLength=1, pattern=r"\S"),
                        "cooldownHours": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_COOLDOWN_HOURS,
                        },
                    },
                }
            ),
        },
    }


HH_MM = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"}


def notifications_schema(shown: bool) -> dict[str, Any]:
    """A client's notification settings, as notifications.py reads them (`shown`: as answered)."""
    emails = {
        "type": "array",
        "maxItems": MAX_RECIPIENTS,
        "items": {"type": "string", "format": "email", "maxLength": MAX_EMAIL},
    }
    webhook_properties: dict[str, Any] = {"url": {"type": "string", "maxLength": MAX_URL}}
    if shown:
        webhook_properties["secret"] = {
            "type": "string",
            "description": "The signing secret, only in the answer of the PUT that created the"
            " webhook or changed its url.",
        }
    missed_call = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "email": {**emails, "description": "Each missed-call alert is emailed to these."},
            "sms": {
                "type": "array",
                "maxItems": MAX_RECIPIENTS,
                "items": DIALED,
                "description": "Each alert is texted to these (the dial rules of forwardTo).",
            },
            "webhook": nullable(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["url"],
                    "description": "Each alert is POSTed here, signed with the webhook's secret"
                    " (Switchboard-Signature). https, never a private, loopback or link-local"
                    " address (in development also http and any address).",
                    "properties": webhook_properties,
                }
            ),
            "quietHours": nullable(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["start", "end"],
                    "description": "Alerts wait from start until end, in the client's time zone"
                    " (start after end: across midnight).",
                    "properties": {"start": HH_MM, "end": HH_MM},
                }
            ),
        },
    }
    reports = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "weekly": {"type": "boolean", "description": "Mondays at 08:00 (client's zone)."},
            "monthly": {"type": "boolean", "description": "The 1st at 08:00 (client's zone)."},
            "email": {**emails, "description": "Required (1 or more) when a report is on."},
        },
    }
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "description": "Who hears of the client's missed calls and who gets its reports. Every"
        " field optional (null as if absent); a client without settings gets no alerts and no"
        " reports.",
        "properties": {"missedCall": nullable(missed_call), "reports": nullable(reports)},
    }
    if shown:
        # The answer always has every part, with its defaults.
        schema["required"] = ["missedCall", "reports"]
        schema["properties"] = {"missedCall": missed_call, "reports": reports}
        missed_call["required"] = ["email", "sms", "webhook", "quietHours"]
        reports["required"] = ["weekly", "monthly", "email"]
    return schema


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
    "Client": client_output(),
    "Flow": flow_schema(),
    "Notifications": notifications_schema(shown=True),
    "NotificationsInput": notifications_schema(shown=False),
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
        **document_path(),
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
        "/api/numbers/{phoneNumber}/flow": {
            "parameters": [
                path_param(
                    "phoneNumber",
                    {"type": "string", "pattern": E164},
                    "A number of the key's client (any number for the admin), E.164.",
                )
            ],
            "get": operation(
                "A number's call flow, defaults filled in; {} when it has none",
                {"200": answer("The flow", ref("Flow"))},
                tag=numbers,
                error_statuses=(404,),
            ),
            "put": operation(
                "Set a number's call flow (an empty one removes it); audited",
                {"200": answer("The flow now", ref("Flow"))},
                request=body(ref("Flow")),
                tag=numbers,
                error_statuses=(400, 404),
            ),
        },
        "/api/clients/{clientId}/notifications": {
            "parameters": [CLIENT_ID],
            "get": operation(
                "A client's notification settings, defaults filled in (all off without any)",
                {"200": answer("The settings", ref("Notifications"))},
                tag=clients,
                error_statuses=(404,),
            ),
            "put": operation(
                "Replace a client's notification settings; audited, published to reporting."
                " A new webhook (or a new url) answers with its signing secret, shown only here",
                {"200": answer("The settings now", ref("Notifications"))},
                request=body(ref("NotificationsInput")),
                tag=clients,
                error_statuses=(400, 404),
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
                path_param("number", {"type": "string", "pattern": r"^\+[1-9]\d{6,14}$"}, "E.164")
            ],
            "get": operation(
                "Everything held about a caller (admin; GDPR article 15): calls, recordings"
                " with fresh signed links, the missed-call alerts naming them, text-back texts"
                " and opt-outs, reports naming them",
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
                        "required": ["toNumber", "clientId", "message"],
                        "additionalProperties": False,
                        "properties": {
                            "fromNumber": {
                                "type": "string",
                                "pattern": E164,
                                "description": "one of the client's numbers or the account's "
                                "main number (TWILIO_PHONE_NUMBER), which is used when omitted",
                            },
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
        "/api/twilio/twiml": {
            "get": operation(
                "TwiML of a make-call call (fetched by Twilio, signed with X-Twilio-Signature)",
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
                error_statuses=(400, 403, 404, 503),
            ),
        },
    }


@lru_cache(maxsize=1)
def _document() -> Document:
    return build_document(
        "Switchboard router API",
        "Clients, their notification settings, their Twilio numbers and the number pool,"
        " client API keys, the audit "
        "log, a caller's erasure and export, buying numbers and placing outbound calls. "
        "Send `Authorization: Bearer <token>`: the admin token manages everything, a "
        'client API key sees only its client. Errors are JSON: {"error": {"code", "message"}}.',
        router_paths(),
        SCHEMAS,
    )


def document() -> Document:
    """A copy of the document (callers may not change the cached one)."""
    return copy.deepcopy(_document())
