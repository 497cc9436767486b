"""Every variable a service reads is documented: in the README or docs/, and in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# How the code reads a variable: the settings helpers, router's service URLs,
# and os.environ itself.
READ = re.compile(
    r"(?:env_(?:str|int|float|bool)|service_url|os\.environ\.get|os\.getenv|os\.environ\[)"
    r"""\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def variables_read() -> set[str]:
    sources = [
        *ROOT.glob("services/**/*.py"),
        *ROOT.glob("switchboard/*.py"),
        *ROOT.glob("devstack/*.py"),
    ]
    found = set()
    for source in sources:
        found.update(READ.findall(source.read_text()))
    return found


def documented(text: str) -> set[str]:
    return set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text))


def test_the_scan_finds_the_settings_services_read() -> None:
    found = variables_read()
    for name in ("ADMIN_API_TOKEN", "ANALYTICS_RETENTION_DAYS", "RECORDINGS_LINK_SECRET"):
        assert name in found
    assert len(found) > 60


def test_every_variable_is_in_the_readme_or_docs() -> None:
    docs = (ROOT / "README.md").read_text() + "".join(
        path.read_text() for path in (ROOT / "docs").glob("*.md")
    )
    missing = sorted(variables_read() - documented(docs))
    assert missing == [], f"read by a service but not documented: {missing}"


def test_every_variable_is_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    missing = sorted(variables_read() - documented(example))
    assert missing == [], f"read by a service but missing from .env.example: {missing}"
