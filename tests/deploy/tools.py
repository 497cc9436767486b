"""What the deploy/ checks share: the checkers they run, and what each deployed process reads.

The checkers (docker-compose, kubectl, promtool) come from Debian's packages
through devstack.packages, as nginx and PostgreSQL do; a check is skipped
only where apt cannot install them (no apt-get, or not root), and says so.
Which variables a process reads comes from the same scan that keeps the
documentation complete (tests/kernel/test_configuration_documented.py),
applied to the files of that one process. The readers of the Dockerfile and
the Kubernetes manifests are here too, for the tests that compare files.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.packages import InstallError, apt_install
from devstack.promtool import ensure_promtool
from tests.kernel.test_configuration_documented import READ

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
# `switchboard` commands that are development tools, never deployed.
NOT_DEPLOYED = {"twilio_sim", "run", "demo"}
# Where the binaries of Debian's packages land.
SYSTEM_PATH = "/usr/bin:/usr/sbin:/usr/local/bin"


def ensure_binary(binary: str, *packages: str) -> str:
    """`binary`, installed from the first of Debian's `packages` that apt-get can install."""
    found = shutil.which(binary) or shutil.which(binary, path=SYSTEM_PATH)
    if found is None:
        try:
            apt_install(*packages)
        except InstallError as err:
            pytest.skip(f"{binary} is not installed and apt cannot install it here: {err}")
        found = shutil.which(binary, path=SYSTEM_PATH)
    if found is None:
        pytest.fail(f"{binary}: apt-get installed {packages[0]} but there is no {binary}")
    return found


def promtool() -> str:
    try:
        return ensure_promtool()
    except InstallError as err:
        pytest.skip(f"promtool is not installed and apt cannot install it here: {err}")


def variables_in(paths: list[Path]) -> set[str]:
    """The environment variables these files read (the documentation test's scan)."""
    found: set[str] = set()
    for path in paths:
        found.update(READ.findall(path.read_text()))
    return found


def kernel_files() -> list[Path]:
    """The shared package every service imports."""
    return sorted((ROOT / "switchboard").rglob("*.py"))


def service_variables(service: str) -> set[str]:
    """What `switchboard <service>` reads: its own folder's code and the kernel's."""
    folder = ROOT / "services" / service
    return variables_in(sorted(folder.rglob("*.py")) + kernel_files())


def edge_variables() -> set[str]:
    """What rendering the edge's configuration reads (devstack.nginx, devstack.apidocs)."""
    return variables_in([ROOT / "devstack" / "nginx.py", ROOT / "devstack" / "apidocs.py"])


def deployed_services() -> set[str]:
    """Every process `switchboard` starts in production: its commands but the dev tools."""
    from switchboard.cli import COMMANDS

    return set(COMMANDS) - NOT_DEPLOYED


def load_all(path: Path) -> list[dict[str, Any]]:
    """Every YAML document in `path` (empty ones left out)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """deploy/Dockerfile as (INSTRUCTION, arguments), continuations joined, comments left out."""
    joined = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def healthcheck_command() -> list[str]:
    """The image's HEALTHCHECK command (exec form)."""
    (args,) = [rest for word, rest in dockerfile_instructions() if word == "HEALTHCHECK"]
    command: list[str] = json.loads(args.split(" CMD ", 1)[1])
    return command


@cache
def k8s_manifests() -> list[dict[str, Any]]:
    """Every document of the kustomize base's manifests."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(load_all(path))
    return docs


@cache
def k8s_by_kind() -> dict[str, dict[str, dict[str, Any]]]:
    """{kind: {name: manifest}}."""
    found: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for doc in k8s_manifests():
        found[doc["kind"]][doc["metadata"]["name"]] = doc
    return found


def config_data() -> dict[str, str]:
    """The ConfigMap every service's environment comes from."""
    data: dict[str, str] = k8s_by_kind()["ConfigMap"]["switchboard-env"]["data"]
    return data


def secret_data() -> dict[str, str]:
    """The Secret every service's environment comes from."""
    data: dict[str, str] = k8s_by_kind()["Secret"]["switchboard-secrets"]["stringData"]
    return data
