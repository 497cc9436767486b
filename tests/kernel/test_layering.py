"""The kernel and the services stand apart from the developer tooling.

`devstack/` (the embedded infrastructure, the one Stack, the demo), `bench/`
and `tests/` may import the services and the kernel, never the other way
round: a deployed service ships without them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from devstack import REPO_ROOT

TOOLING = ("devstack", "bench", "tests")


def imported_modules(source: str) -> list[str]:
    """Every absolute module name a Python source imports."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def tooling_imports(root: Path) -> list[str]:
    """`file: module` for each import of the tooling below `root`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for module in imported_modules(path.read_text()):
            if module.split(".")[0] in TOOLING:
                found.append(f"{path.relative_to(REPO_ROOT)}: {module}")
    return found


def test_services_and_kernel_never_import_the_tooling() -> None:
    assert tooling_imports(REPO_ROOT / "services") == []
    assert tooling_imports(REPO_ROOT / "switchboard") == []


def test_the_scan_sees_a_tooling_import(tmp_path: Path) -> None:
    assert imported_modules("from devstack.stack import Stack\nimport bench.report\n") == [
        "devstack.stack",
        "bench.report",
    ]
