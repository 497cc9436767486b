"""The README's "A first call" runs as written, so the user's guide cannot drift.

The block is taken from README.md itself and run by bash against a fresh
stack; only its first line (where the edge, the simulator and the admin token
are) is pointed at this test's stack instead of `make run`'s ports.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from devstack import REPO_ROOT
from tests.e2e.conftest import ADMIN, System

pytestmark = pytest.mark.e2e

SETTINGS_LINE = "EDGE=http://127.0.0.1:8080 SIM=http://127.0.0.1:8090 TOKEN=dev-admin-token"


def first_call_block() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## A first call", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README's 'A first call' has no sh block"
    return match.group(1)


def test_the_readme_first_call_runs_as_written(system: System) -> None:
    block = first_call_block()
    assert block.startswith(SETTINGS_LINE + "\n"), "the block must start with its settings line"
    here = f"EDGE={system.url} SIM={system.simulator} TOKEN={ADMIN}"
    script = block.replace(SETTINGS_LINE, here, 1)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    # The block prints JSON documents one after another: the number, the
    # assignment, the call, the summary and the recordings.
    decoder = json.JSONDecoder()
    documents, text = [], result.stdout.strip()
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    call = next(d for d in documents if "callSid" in d and "durationSec" in d)
    assert call["answered"] is True and call["durationSec"] == 42, call
    summary = next(d for d in documents if "totalCalls" in d)
    assert summary["totalCalls"] == 1 and summary["totalDurationSec"] == 42, summary
    recordings = documents[-1]["recordings"]
    assert recordings and recordings[0]["playbackUrl"].startswith(system.url)
