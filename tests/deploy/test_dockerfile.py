"""deploy/Dockerfile: one image for every service, checked without a Docker daemon.

The file is read instruction by instruction: a python:3.11-slim base, the
project installed with everything it reads at run time, a non-root user,
`switchboard` as the entrypoint, and a HEALTHCHECK whose command is run here
against a small HTTP server standing in for a service's /healthz.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devstack.nginx import TEMPLATE
from switchboard.events import SCHEMAS_DIR
from tests.deploy.tools import DEPLOY, ROOT, dockerfile_instructions, healthcheck_command

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"


def only(name: str) -> str:
    values = [rest for word, rest in dockerfile_instructions() if word == name]
    assert len(values) == 1, f"expected one {name}, found {values}"
    return values[0]


def test_the_image_is_built_on_python_3_11_slim() -> None:
    assert only("FROM") == "python:3.11-slim"


def test_the_processes_run_as_a_non_root_user() -> None:
    order = [word for word, _ in dockerfile_instructions()]
    user = only("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert order.index("USER") < order.index("ENTRYPOINT")
    assert re.search(r"useradd .*--uid 10001 ", DOCKERFILE.read_text())


def test_switchboard_is_the_entrypoint() -> None:
    assert json.loads(only("ENTRYPOINT")) == ["switchboard"]


def test_the_image_holds_what_the_services_read_at_run_time() -> None:
    copied = {rest.split()[0] for word, rest in dockerfile_instructions() if word == "COPY"}
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    # Every package pyproject installs, the event schemas and the edge's template.
    needed = {"switchboard", "services", "devstack", "schemas", "deploy/nginx"}
    assert needed <= copied
    assert SCHEMAS_DIR == ROOT / "schemas"
    assert TEMPLATE.parent == ROOT / "deploy" / "nginx"
    # Installed in place: the schemas are read from beside the packages.
    assert any(
        word == "RUN" and "pip install --no-deps --editable ." in rest
        for word, rest in dockerfile_instructions()
    )


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set(IGNORE.read_text().split())
    assert {".git", ".venv", ".run", ".cache", ".env"} <= ignored


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_healthcheck(port: int) -> int:
    command = healthcheck_command()
    assert command[0] == "python"
    env = {"PORT": str(port), "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30
    )
    return result.returncode


def test_the_healthcheck_passes_on_a_healthy_service(health_server: ThreadingHTTPServer) -> None:
    _Health.status = 200
    assert run_healthcheck(health_server.server_address[1]) == 0


def test_the_healthcheck_fails_on_an_unhealthy_service(
    health_server: ThreadingHTTPServer,
) -> None:
    _Health.status = 503
    try:
        assert run_healthcheck(health_server.server_address[1]) != 0
    finally:
        _Health.status = 200


def test_the_healthcheck_fails_when_nothing_listens(health_server: ThreadingHTTPServer) -> None:
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    assert run_healthcheck(port) != 0
