"""Analytics' own OpenAPI document (services/analytics/openapi.py) is true of the analytics app.

This runs schemathesis over every operation the document describes,
against an analytics app on a real chDB database holding a few calls. Each
operation is called as the admin with valid and invalid generated requests:
no answer may be a 5xx, and every answer must be documented for its
operation, with the documented content type and body schema. About half of
the generated ids are swapped for ids that exist, to reach past the 404s.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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

from services.analytics.consumer import write
from services.analytics.openapi import analytics_paths, document
from services.analytics.store import Store
from tests.analytics import call_scripts as script
from tests.analytics.conftest import AUTH

EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SEEDED = {"callSid": "CAconformance1", "clientId": "client-conformance"}


def seed(store: Store) -> None:
    """A few calls of one client: answered, missed, a repeat caller and an unrouted one."""
    client = SEEDED["clientId"]
    calls = [
        script.answered_call(SEEDED["callSid"], BASE, client_id=client),
        script.missed_call("CAconformance2", BASE + timedelta(hours=1), client_id=client),
        script.answered_call("CAconformance3", BASE + timedelta(days=1), client_id=client),
        script.unrouted_call("CAconformance4", BASE + timedelta(days=2)),
    ]
    write(store, [event for call in calls for event in call])


def point_at_real_objects(case: Any) -> None:
    """Swap about half of the generated ids for ids that exist (deterministically)."""
    for where in (case.path_parameters, case.query, case.body):
        if not isinstance(where, dict) or zlib.crc32(repr(where).encode()) % 2:
            continue
        for name, value in SEEDED.items():
            if name in where:
                where[name] = value


def exercise(operation: Any, mode: GenerationMode) -> None:
    """Call one operation with generated requests; raises on the first failed check."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        point_at_real_objects(case)
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()


# Known disagreements between the document and the app: (label, mode) -> reason.
KNOWN: dict[tuple[str, str], str] = {}


def operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(document())
    ours = set(analytics_paths())
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document is not valid: {result}"
        if result.ok().path in ours:
            found.append(result.ok())
    return found


def modes(operation: Any) -> tuple[GenerationMode, ...]:
    """Both modes; only valid requests for an operation that takes no input to make invalid."""
    inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
    if any(len(container) for container in inputs):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


CASES = [
    pytest.param(
        operation.label,
        mode,
        id=f"{operation.label} {mode.value}",
        marks=[pytest.mark.xfail(strict=True, reason=KNOWN[(operation.label, mode.value)])]
        if (operation.label, mode.value) in KNOWN
        else [],
    )
    for operation in operations()
    for mode in modes(operation)
]


@pytest.fixture
def app(make_app: Callable[..., Flask], store: Store) -> Flask:
    seed(store)
    return make_app()


def test_the_document_covers_every_public_analytics_route(app: Flask) -> None:
    served = {
        rule.rule.replace("<call_sid>", "{callSid}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
    }
    assert served == set(analytics_paths())


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_answer_is_documented_and_none_is_a_server_error(
    app: Flask, label: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(document())
    schema.app = app
    [operation] = [
        result.ok()
        for result in schema.get_all_operations()
        if isinstance(result, Ok) and result.ok().label == label
    ]
    exercise(operation, mode)
