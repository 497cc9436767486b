"""Recordings' OpenAPI 3 document: listings, signed media, deletion, erasure, at /api/openapi.json.

Kept true by tests/recordings/test_openapi_conformance.py (schemathesis
against the live app). Statuses, media types and limits come from
metadata.py, where the service defines them.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from services.recordings.metadata import (
    AUDIT_DEFAULT_LIMIT,
    AUDIT_MAX_LIMIT,
    CONTENT_TYPES,
    KINDS,
    STATUSES,
    UNKNOWN_CONTENT_TYPE,
)
from switchboard.openapi import (
    CLIENT_ID,
    COUNT,
    E164,
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
    strict,
)
from switchboard.openapi import document as build_document

MEDIA_TYPES = (*CONTENT_TYPES.values(), UNKNOWN_CONTENT_TYPE)

RECORDING_FIELDS: dict[str, Any] = {
    "recordingSid": {"type": "string"},
    "callSid": {"type": "string"},
    "clientId": nullable({"type": "string"}),
    "durationSec": nullable(COUNT),
    "channels": nullable({"type": "integer", "minimum": 1}),
    "bytes": nullable(COUNT),
    "format": nullable({"type": "string"}),
    "sha256": nullable({"type": "string"}),
    "status": {"type": "string", "enum": list(STATUSES)},
    "kind": {
        "type": "string",
        "enum": list(KINDS),
        "description": "A recording of the call, or a voicemail the caller left",
    },
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

SCHEMAS: dict[str, Any] = {
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


def recordings_paths() -> dict[str, Any]:
    """The paths recordings serves (services/recordings/app.py)."""
    tag = "recordings"
    recording_sid = path_param("recordingSid", {"type": "string"}, "Twilio's RecordingSid")
    media = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in MEDIA_TYPES}
    return {
        **document_path(),
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
                    limit_param(AUDIT_MAX_LIMIT, AUDIT_DEFAULT_LIMIT),
                    query_param("target", {"type": "string"}, "A call or recording sid"),
                    query_param("clientId", {"type": "string"}, "Client"),
                ],
                tag=tag,
                error_statuses=(400,),
            ),
        },
    }


@lru_cache(maxsize=1)
def _document() -> Document:
    return build_document(
        "Switchboard recordings API",
        "Recordings of a call or a client, signed expiring playback and download links, "
        "deletion, a caller's erasure and the access audit. Send `Authorization: Bearer "
        "<token>`: the admin token sees every client, a client API key only its own; a "
        "signed media link needs no token.",
        recordings_paths(),
        SCHEMAS,
    )


def document() -> Document:
    """A copy of the document (callers may not change the cached one)."""
    return copy.deepcopy(_document())
