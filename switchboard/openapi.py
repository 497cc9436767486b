"""Building blocks of the services' OpenAPI 3 documents, and the merge the edge serves.

Each service writes its own document by hand as data beside its routes
(services/<name>/openapi.py) and serves it at /api/openapi.json; a test per
service runs schemathesis against the live app to keep it true. What every
document shares lives here: the error shape, bearer auth, the helpers that
spell operations and parameters, and `merge`, which joins the services'
documents into the one the edge serves (a path or schema two services
describe differently is an error, not a silent winner).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Response, jsonify

JSON = "application/json"
DOCUMENT_PATH = "/api/openapi.json"
E164 = r"^\+[1-9][0-9]{1,14}$"

Document = dict[str, Any]


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def text(limit: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit, **extra}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


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


COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": "number", "minimum": 0}
WHEN = {"type": "string", "format": "date-time"}


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
    415: "The body is not of the media type the operation takes.",
    416: "The Range header cannot be served (`Content-Range: bytes */<size>`).",
    429: "A limit is reached (`outbound_cap_reached`: the client's outbound calls for today).",
    502: "Twilio refused the request or could not be reached.",
    503: "A dependency (database, storage, key check, Twilio configuration) is unavailable.",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
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
    """One operation; a non-public one may also answer 401, 403 and 503 (auth, key check)."""
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


def limit_param(maximum: int, default: int) -> dict[str, Any]:
    """A page size from 1 to `maximum` (the service's own constant), `default` when left out."""
    return query_param(
        "limit", {"type": "integer", "minimum": 1, "maximum": maximum}, f"How many ({default})"
    )


CLIENT_ID = path_param("clientId", {"type": "string"}, "The client's id (a UUID).")


def document_path() -> dict[str, Any]:
    """The path each service serves its own document at (and the edge the merged one)."""
    return {
        DOCUMENT_PATH: {
            "get": operation(
                "This document (no auth)",
                {"200": answer("OpenAPI 3 document", {"type": "object"})},
                public=True,
                tag="meta",
            ),
        }
    }


def document(
    title: str, description: str, paths: dict[str, Any], schemas: dict[str, Any]
) -> Document:
    """A whole OpenAPI 3 document: bearer auth by default, the shared Error schema included."""
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1", "description": description},
        "security": [{"bearer": []}],
        "paths": {**paths, **document_path()},
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **schemas},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


class MergeConflict(ValueError):
    """Two documents describe the same path or schema differently."""


def merge(documents: Iterable[Document], title: str, description: str) -> Document:
    """One document holding every path and schema of `documents`.

    A path or component two documents share must be described the same in
    both (as /api/openapi.json and the Error schema are); anything else
    raises MergeConflict, since the edge would otherwise document only one
    of two services' answers.
    """
    merged: Document = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1", "description": description},
        "security": [{"bearer": []}],
        "paths": {},
        "components": {},
    }
    for doc in documents:
        _join(merged["paths"], doc.get("paths", {}), "path")
        for kind, entries in doc.get("components", {}).items():
            _join(merged["components"].setdefault(kind, {}), entries, f"components.{kind}")
    return copy.deepcopy(merged)


def _join(into: dict[str, Any], entries: dict[str, Any], what: str) -> None:
    for name, value in entries.items():
        if name in into and into[name] != value:
            raise MergeConflict(f"{what} {name} is described differently by two services")
        into[name] = value


def openapi_blueprint(build: Callable[[], Document], name: str = "openapi") -> Blueprint:
    """Serves the service's own document at /api/openapi.json (no auth)."""
    api = Blueprint(name, __name__)

    @api.get(DOCUMENT_PATH)
    def openapi() -> Response:
        return jsonify(build())

    return api
