"""The shared OpenAPI pieces: each service's document stands alone, and merging them loses nothing.

No network: the documents are data. The edge test (tests/devstack/
test_api_docs.py) checks the merged document as the edge serves it.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from schemathesis.core.result import Ok

from services.analytics.openapi import document as analytics_document
from services.ingress.openapi import document as ingress_document
from services.recordings.openapi import document as recordings_document
from services.router.openapi import document as router_document
from switchboard.openapi import DOCUMENT_PATH, MergeConflict, document, merge

SERVICES = {
    "ingress": ingress_document,
    "router": router_document,
    "analytics": analytics_document,
    "recordings": recordings_document,
}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_services_document_is_valid_on_its_own(name: str) -> None:
    doc = SERVICES[name]()
    results = list(schemathesis.openapi.from_dict(doc).get_all_operations())
    assert results and all(isinstance(result, Ok) for result in results)
    assert DOCUMENT_PATH in doc["paths"]


def test_the_merged_document_holds_every_path_and_schema_of_every_service() -> None:
    docs = [build() for build in SERVICES.values()]
    merged = merge(docs, "all", "every service")
    for doc in docs:
        assert all(merged["paths"][path] == item for path, item in doc["paths"].items())
        schemas = doc["components"]["schemas"]
        assert all(merged["components"]["schemas"][n] == s for n, s in schemas.items())
    results = list(schemathesis.openapi.from_dict(merged).get_all_operations())
    assert all(isinstance(result, Ok) for result in results)
    methods = {"get", "put", "post", "patch", "delete"}
    # One operation per method of every path: none lost in the merge.
    assert len(results) == sum(len(methods & set(item)) for item in merged["paths"].values())


def _doc(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    return document("t", "d", paths, schemas or {})


def test_a_path_two_services_describe_differently_is_refused() -> None:
    one = _doc({"/api/x": {"get": {"summary": "one", "responses": {}}}})
    two = _doc({"/api/x": {"get": {"summary": "two", "responses": {}}}})
    with pytest.raises(MergeConflict, match="/api/x"):
        merge([one, two], "t", "d")


def test_a_schema_two_services_define_differently_is_refused() -> None:
    one = _doc({}, {"Thing": {"type": "string"}})
    two = _doc({}, {"Thing": {"type": "integer"}})
    with pytest.raises(MergeConflict, match="Thing"):
        merge([one, two], "t", "d")
