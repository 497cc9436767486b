"""Ingress' OpenAPI 3 document: Twilio's webhooks and a call flow's leg TwiML, at /api/openapi.json.

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
from switchboard.callflow_twiml import (
    FLOW_ANSWER_PATH,
    FLOW_SCREEN_PATH,
    SCREEN_PARAM,
    VOICEMAIL_DONE_PATH,
    WHISPER_PARAM,
)
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


def flow_leg(
    summary: str, query: list[dict[str, Any]] | None = None, form: bool = True
) -> dict[str, Any]:
    """A document Twilio fetches while a call flow runs: pure TwiML, signed like a webhook."""
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["twilio webhooks"],
        "security": [],
        "parameters": [SIGNATURE, *(query or [])],
        "responses": {
            "200": {"description": "TwiML", "content": {XML: {"schema": {"type": "string"}}}},
            **errors(403),
        },
    }
    if form:
        # Twilio's fields of the call (Digits, after a <Gather>); none is required.
        fields = {"type": "object", "additionalProperties": {"type": "string"}}
        operation["requestBody"] = {"required": True, "content": {FORM: {"schema": fields}}}
    return operation


def leg_query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def flow_paths() -> dict[str, Any]:
    answer_query = [
        leg_query(WHISPER_PARAM, {"type": "string"}, "What the answerer hears first"),
        leg_query(SCREEN_PARAM, {"enum": ["1"]}, "1: the answerer must press 1"),
    ]
    answer_leg = "The answering leg of a call flow (<Number url>): whisper, screening"
    return {
        FLOW_ANSWER_PATH: {
            "get": flow_leg(answer_leg, answer_query, form=False),
            "post": flow_leg(answer_leg, answer_query),
        },
        FLOW_SCREEN_PATH: {
            "post": flow_leg("The screening digit: 1 bridges the call, anything else hangs up")
        },
        VOICEMAIL_DONE_PATH: {"post": flow_leg("The end of a voicemail's <Record>: hang up")},
    }


def ingress_paths() -> dict[str, Any]:
    """The paths ingress serves (services/ingress/api.py)."""
    return {
        **document_path(),
        **{WEBHOOK_PATHS[kind]: webhook(kind) for kind in WEBHOOKS},
        **flow_paths(),
    }


@lru_cache(maxsize=1)
def _document() -> Document:
    return build_document(
        "Switchboard Twilio webhooks",
        "Where Twilio posts a number's calls, their status, the forwarded leg's end and "
        "recordings; each is signed with X-Twilio-Signature and becomes an event. Also the "
        "TwiML a call flow's legs fetch while the call runs.",
        ingress_paths(),
        {},
    )


def document() -> Document:
    """A copy of the document (callers may not change the cached one)."""
    return copy.deepcopy(_document())
