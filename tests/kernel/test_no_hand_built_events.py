"""Consumer tests feed consumers only events their producers' own builders made.

A test that writes an event by hand tests a consumer against what its
author believes the producer sends, and keeps passing when the producer
sends something else: analytics once read `valuePerConversion` from a
`client.settings-changed` that only its tests ever built. This scan refuses,
in every test outside the producers' own tests, an `Event(...)` built with a
type, a `type=` keyword naming an event type, and an event type written as
`"type": "..."` in a dict or in JSON text. Build events with the producer's
builder (router's services/router/facts.py and routing.py, ingress's
services/ingress/webhooks.py, recordings' services/recordings/announcements.py)
and, for values a producer would not send, change them on its output (as
tests/analytics/call_scripts.py `with_data` does).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from switchboard.events import event_types

TESTS = Path(__file__).resolve().parents[1]
# The producers' own tests, where their builders (and the envelope) are tested.
PRODUCER_TESTS = ("router", "ingress", "kernel")


def known_types() -> set[str]:
    return {name for name, _version in event_types()}


def hand_built_events(source: str, types: set[str]) -> list[tuple[int, str]]:
    """(line, what) of every event built by hand in `source`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            owner = func.value if isinstance(func, ast.Attribute) else None
            threading = isinstance(owner, ast.Name) and owner.id == "threading"
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            if name == "Event" and not threading and (node.args or "type" in keywords):
                found.append((node.lineno, "Event(...) built by hand"))
                continue
            value = keywords.get("type")
            if isinstance(value, ast.Constant) and value.value in types:
                found.append((node.lineno, f"type={value.value!r}"))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "type"
                    and isinstance(value, ast.Constant)
                    and value.value in types
                ):
                    found.append((node.lineno, f'{{"type": {value.value!r}}}'))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in re.finditer(r'"type"\s*:\s*"([a-z.-]+)"', node.value):
                if match[1] in types:
                    found.append((node.lineno, f"JSON text with type {match[1]!r}"))
    return found


def consumer_test_files() -> list[Path]:
    return sorted(
        path
        for path in TESTS.rglob("*.py")
        if path.relative_to(TESTS).parts[0] not in PRODUCER_TESTS
    )


def test_no_consumer_test_builds_an_event_by_hand() -> None:
    types = known_types()
    offences = [
        f"{path.relative_to(TESTS.parent)}:{line}: {what}"
        for path in consumer_test_files()
        for line, what in hand_built_events(path.read_text(), types)
    ]
    assert offences == [], "build these with the producer's builder:\n" + "\n".join(offences)


def test_the_scan_covers_the_consumers_tests() -> None:
    scanned = {path.relative_to(TESTS).parts[0] for path in consumer_test_files()}
    assert {"analytics", "recordings", "e2e"} <= scanned


def test_the_scan_finds_each_way_of_building_an_event_by_hand() -> None:
    source = '''
import threading
from switchboard import events
from switchboard.events import Event

a = Event(type="client.settings-changed", source="router", data={})
b = events.Event("call.routed", "router", {})
c = {"type": "number.assigned", "source": "router", "data": {}}
d = '{"id": "1", "type": "call.received", "data": {}}'
e = replace(a, type="call.placed")
'''
    lines = [line for line, _what in hand_built_events(source, known_types())]
    assert sorted(lines) == [6, 7, 8, 9, 10]


def test_the_scan_leaves_builders_and_other_types_alone() -> None:
    source = '''
import threading
from services.router import facts

done = threading.Event()
event = facts.call_placed("CA1", "c1", "+14155550100", "+14155559999", True, None)
shape = {"type": "object"}
page = {"type": "text/html"}
'''
    assert hand_built_events(source, known_types()) == []
