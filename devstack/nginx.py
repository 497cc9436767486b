"""The nginx edge in front of the services, run as a child process.

`render_config` fills deploy/nginx/switchboard.conf.template (the same file
production uses) with the listen address and the upstreams; `start_nginx`
writes it into a prefix folder that holds everything nginx writes (pid, temp
files) and the files it serves itself (the merged OpenAPI document and
Swagger UI, devstack/apidocs.py), runs
`nginx -p <prefix> -c <conf> -e stderr -g 'daemon off;'` and returns once
the edge answers GET /healthz. nginx is installed from Debian's packages
when the machine lacks it. `EdgeLimits` holds the edge's abuse
limits (requests per client address), from EDGE_* variables.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack import REPO_ROOT
from devstack.apidocs import write_api_docs
from devstack.packages import apt_install
from devstack.processes import (
    Child,
    StartError,
    ensure_port_free,
    read_pid,
    split_address,
    stop_stray,
)
from switchboard.settings import ConfigError, env_int, env_str

TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "switchboard.conf.template"
UPSTREAMS = ("ingress", "router", "analytics", "recordings", "reporting")
_RATE = re.compile(r"[1-9][0-9]*r/[sm]")


@dataclass(frozen=True)
class EdgeLimits:
    """Requests per client address the edge lets through, in nginx's terms.

    `rate` is nginx's "<n>r/s" or "<n>r/m"; `burst` is how many requests past
    the rate are let through at once before the edge answers 429. Twilio's
    callbacks get their own, higher limit: a busy number's calls all come
    from Twilio's few addresses. The defaults leave room for the load
    benchmarks, which send everything from one address.
    """

    api_rate: str = "100r/s"
    api_burst: int = 200
    webhook_rate: str = "1000r/s"
    webhook_burst: int = 2000

    def __post_init__(self) -> None:
        for name, rate in (
            ("EDGE_API_RATE", self.api_rate),
            ("EDGE_WEBHOOK_RATE", self.webhook_rate),
        ):
            if not _RATE.fullmatch(rate):
                raise ConfigError(f"{name} must be like 20r/s or 600r/m, got {rate!r}")
        for name, burst in (
            ("EDGE_API_BURST", self.api_burst),
            ("EDGE_WEBHOOK_BURST", self.webhook_burst),
        ):
            if burst < 0:
                raise ConfigError(f"{name} must not be negative, got {burst}")

    @classmethod
    def from_env(cls) -> EdgeLimits:
        default = cls()
        return cls(
            api_rate=env_str("EDGE_API_RATE", default.api_rate),
            api_burst=env_int("EDGE_API_BURST", default.api_burst),
            webhook_rate=env_str("EDGE_WEBHOOK_RATE", default.webhook_rate),
            webhook_burst=env_int("EDGE_WEBHOOK_BURST", default.webhook_burst),
        )


@dataclass
class Edge:
    """A running edge: its base URL, and how to stop it."""

    url: str
    prefix: Path
    log_file: Path
    child: Child

    def alive(self) -> bool:
        return self.child.alive()

    def stop(self, timeout: float = 10.0) -> None:
        self.child.stop(timeout)


def ensure_nginx() -> str:
    """The nginx binary, installed with apt-get when missing."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        apt_install("nginx", "nginx-light")
        found = shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/usr/bin")
    if found is None:
        raise StartError("nginx: not installed and apt-get could not install it")
    return found


def render_config(
    listen: str,
    upstreams: dict[str, str],
    worker_processes: int = 1,
    user: str | None = None,
    limits: EdgeLimits | None = None,
) -> str:
    """The edge's nginx.conf for `listen` (host:port) and the services' host:port.

    `user` is the account nginx's workers run as (nginx's default when None);
    `limits` default to EdgeLimits' defaults.
    """
    limits = limits or EdgeLimits()
    missing = [name for name in UPSTREAMS if name not in upstreams]
    if missing:
        raise ValueError(f"no address for upstream(s): {', '.join(missing)}")
    values = {
        "listen": listen,
        "worker_processes": str(worker_processes),
        "user_directive": f"user {user};" if user else "",
        "api_rate": limits.api_rate,
        "api_burst": str(limits.api_burst),
        "webhook_rate": limits.webhook_rate,
        "webhook_burst": str(limits.webhook_burst),
        **{name: upstreams[name] for name in UPSTREAMS},
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        raise ValueError(f"unfilled placeholders in {TEMPLATE.name}: {', '.join(left)}")
    return text


def start_nginx(
    prefix: Path,
    listen: str,
    upstreams: dict[str, str],
    log_file: Path | None = None,
    timeout: float = 20.0,
    limits: EdgeLimits | None = None,
) -> Edge:
    """Start the edge on `listen` (host:port) in front of `upstreams`.

    `limits` default to the EDGE_* variables (EdgeLimits.from_env).
    """
    limits = limits or EdgeLimits.from_env()
    binary = ensure_nginx()
    prefix = prefix.resolve()
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "switchboard.conf"
    # As root, workers run as root too, so a prefix below a root-only folder works.
    user = "root" if os.geteuid() == 0 else None
    conf.write_text(render_config(listen, upstreams, user=user, limits=limits))
    write_api_docs(prefix / "public")
    log_file = (log_file or prefix / "nginx.log").resolve()
    stop_stray(read_pid(prefix / "nginx.pid"), ["nginx", str(conf)], signal.SIGTERM, "nginx edge")
    host, port = split_address(listen)
    local = "127.0.0.1" if host in ("0.0.0.0", "*") else host
    ensure_port_free(local, port, "nginx")
    base = [binary, "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"]
    test = subprocess.run(
        [*base, "-t", "-q"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if test.returncode != 0:
        raise StartError(f"nginx: configuration test failed:\n{test.stdout}")
    child = Child("nginx", [*base, "-g", "daemon off;"], log_file).start()
    url = f"http://{local}:{port}"
    edge = Edge(url, prefix, log_file, child)
    child.wait_healthy(url, timeout, what="the edge at " + url)
    return edge
