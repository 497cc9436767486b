"""Recordings' own OpenAPI document (services/recordings/openapi.py) is true of the recordings app.

This runs schemathesis over every operation the document describes,
against a recordings app on real PostgreSQL and storage holding a recording
archived from the Twilio simulator. Each operation is called as the admin
with valid and invalid generated requests: no answer may be a 5xx, and every
answer must be documented, with the documented content type and body schema.
About half of the generated ids (and media links) are swapped for real ones,
to reach past the 404s and 403s; deleting operations run on their own copy.
"""

from __future__ import annotations

import time
import zlib
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

from services.recordings import links
from services.recordings.app import Runtime, create_app
from services.recordings.openapi import document, recordings_paths
from tests.recordings import recording_events as ev
from tests.recordings.conftest import ADMIN, Sim
from tests.recordings.seeding import stored_recording

AUTH = {"Authorization": f"Bearer {ADMIN}"}
CALLER = "+14155550123"
EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def point_at_real_objects(case: Any, seeded: dict[str, str], link: dict[str, str]) -> None:
    """Swap about half of the generated ids and links for real ones (deterministically)."""
    for where in (case.path_parameters, case.body):
        if isinstance(where, dict) and zlib.crc32(repr(where).encode()) % 2 == 0:
            for name, value in seeded.items():
                if name in where:
                    where[name] = value
    if case.operation.path.startswith(links.MEDIA_PATH) and isinstance(case.query, dict):
        if zlib.crc32(repr(case.query).encode()) % 2 == 0:
            case.path_parameters["recordingSid"] = seeded["recordingSid"]
            case.query.update(link)


def exercise(operation: Any, mode: GenerationMode, seeded: dict[str, str], link: Any) -> None:
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
        point_at_real_objects(case, seeded, link)
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()


# Known disagreements between the document and the app: (label, mode) -> reason.
KNOWN: dict[tuple[str, str], str] = {}


def operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(document())
    ours = set(recordings_paths())
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
def app(runtime: Runtime) -> Flask:
    return create_app(runtime.config, run_worker=False, run_housekeeping=False, runtime=runtime)


def test_the_document_covers_every_public_recordings_route(app: Flask) -> None:
    served = {
        rule.rule.replace("<client_id>", "{clientId}")
        .replace("<recording_sid>", "{recordingSid}")
        .replace("<call_sid>", "{callSid}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
    }
    assert served == set(recordings_paths())


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_answer_is_documented_and_none_is_a_server_error(
    app: Flask, runtime: Runtime, sim: Sim, label: str, mode: GenerationMode
) -> None:
    client_id = ev.new_client_id()
    recording = stored_recording(runtime, sim, client_id, caller=CALLER)
    seeded = {
        "clientId": client_id,
        "callSid": recording.call_sid,
        "recordingSid": recording.recording_sid,
        "phoneNumber": CALLER,
    }
    config = runtime.config
    link = links.mint(
        config.link_secret, recording.recording_sid, "inline", "admin", time.time(), 3600
    ).query(config.link_secret)
    schema = schemathesis.openapi.from_dict(document())
    schema.app = app
    [operation] = [
        result.ok()
        for result in schema.get_all_operations()
        if isinstance(result, Ok) and result.ok().label == label
    ]
    exercise(operation, mode, seeded, link)
