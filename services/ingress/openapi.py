"""Ingress' OpenAPI 3 document: Twilio's four webhooks, at /api/openapi.json.

Twilio, not an API client, calls these: the form fields are Twilio's (the
required ones are those webhooks.py cannot do without; Twilio sends many
more, all kept), and X-Twilio-Signature stands in for a bearer token. Kept
true by tests/ingress/test_openapi.py (schemathesis against the live app).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from services.ingress.webhooks import WEBHOOKS
from switchboard.openapi import Document, answer, document_path, errors
from switchboard.openapi import document as build_document

FORM = "application/x-www-form-urlencoded"
XML = "text/xml"

# Where Twilio posts each webhook (the edge routes these to ingress).
WEBHOOK_PATHS = {
    "voice": "/api/twilio/webhook",
    "status": "/api/twilio/status",
    "dial-status": "/api/twilio/dial-status",
    "recording-status": "/api/twilio/recording-status",
}

SUMMARIES = {
    "voice": "An incoming call: the event is stored and router's TwiML answered",
    "status": "A call's status changed",
    "dial-status": "The forwarded leg (<Dial>) ended; TwiML hangs up",
    "recording-status": "A recording's status changed",
}

SIGNATURE = {
    "name": "X-Twilio-Signature",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Twilio's HMAC-SHA1 of the public URL and the form (403 when it does not match)",
}


def webhook(kind: str) -> dict[str, Any]:
    required = list(WEBHOOKS[kind].required)
    form = {
        "type": "object",
        "required": required,
        "properties": {name: {"type": "string", "minLength": 1} for name in required},
        "additionalProperties": {"type": "string"},
    }
    return {
        "post": {
            "summary": SUMMARIES[kind],
            "tags": ["twilio webhooks"],
            "security": [],
            "parameters": [SIGNATURE],
            "requestBody": {"required": True, "content": {FORM: {"schema": form}}},
            "responses": {
                "200": {"description": "TwiML", "content": {XML: {"schema": {"type": "string"}}}},
                **errors(400, 403, 415),
                "503": answer(
                    "Neither Kafka nor the spool could take the event",
                    {"$ref": "#/components/schemas/Error"},
                ),
            },
        }
    }


def ingress_paths() -> dict[str, Any]:
    """The paths ingress serves (services/ingress/api.py)."""
    return {**document_path(), **{WEBHOOK_PATHS[kind]: webhook(kind) for kind in WEBHOOKS}}


@lru_cache(maxsize=1)
def _document() -> Document:
    return build_document(
        "Switchboard Twilio webhooks",
        "Where Twilio posts a number's calls, their status, the forwarded leg's end and "
        "recordings; each is signed with X-Twilio-Signature and becomes an event.",
        ingress_paths(),
        {},
    )


def document() -> Document:
    """A copy of the document (callers may not change the cached one)."""
    return copy.deepcopy(_document())
