"""Ingress' own OpenAPI document (services/ingress/openapi.py) is true of the ingress app.

schemathesis calls each webhook with valid and invalid generated forms
against an ingress on the real Kafka broker, twice: with signature checks on
(what production runs: every generated request is unsigned, so 403) and off
(the forms reach the field checks, Kafka and router's fallback). No answer
may be a 5xx, and every answer must be documented for its operation, with
the documented content type and body schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.ingress.app import create_app, runtime_of
from services.ingress.openapi import document, ingress_paths
from switchboard.kafka import Topics
from tests.ingress.test_app import make_config
from tests.support import free_port

EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(params=[True, False], ids=["signatures-checked", "signatures-off"])
def app(
    request: pytest.FixtureRequest, kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> Iterator[Flask]:
    # Nothing listens on the router's port: the voice webhook answers the fallback TwiML.
    config = make_config(kafka_bootstrap, topics, tmp_path, f"http://127.0.0.1:{free_port()}")
    app = create_app(replace(config, validate_signatures=request.param))
    yield app
    runtime_of(app).close()


def test_the_document_covers_every_public_ingress_route(app: Flask) -> None:
    served = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")}
    assert served == set(ingress_paths())


def test_every_answer_is_documented_and_none_is_a_server_error(app: Flask) -> None:
    schema = schemathesis.openapi.from_dict(document())
    schema.app = app
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document is not valid: {result}"
        operations.append(result.ok())
    assert len(operations) == sum(len(methods) for methods in ingress_paths().values())
    for operation in operations:
        for mode in modes(operation):
            exercise(operation, mode)


def modes(operation: Any) -> tuple[GenerationMode, ...]:
    """Both modes; only valid requests for an operation that takes no input to make invalid."""
    inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
    if any(len(container) for container in inputs):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


def exercise(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    run()
