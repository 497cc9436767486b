"""`switchboard run` (`make run`): the whole system on this machine.

Brings up Kafka (unless KAFKA_BOOTSTRAP_SERVERS names one), PostgreSQL
(unless DATABASE_URL does), creates the topics, starts the services as child
processes with the environment they need, then the nginx edge, and waits. All
state lives in .run/ (data, logs, the chDB folder). Ctrl-C or SIGTERM stops
everything in reverse order and exits 0; a part that dies is reported and
everything stops with exit code 1.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Protocol

from devstack import REPO_ROOT, kafka, nginx, postgres
from devstack.processes import (
    Child,
    StartError,
    ensure_port_free,
    split_address,
)
from devstack.stack import Service
from switchboard import settings
from switchboard.kafka import Topics, ensure_topics

SERVICES = ("router", "ingress", "analytics", "recordings")
KAFKA_PORT, KAFKA_CONTROLLER_PORT, POSTGRES_PORT = 9092, 9093, 5433
BINDS = {
    "ingress": "127.0.0.1:8081",
    "router": "127.0.0.1:8082",
    "analytics": "127.0.0.1:8083",
    "recordings": "127.0.0.1:8084",
    "twilio_sim": "127.0.0.1:8090",
}
EDGE_BIND = "127.0.0.1:8080"
DEV_ADMIN_TOKEN = settings.DEV_ADMIN_TOKEN
# The local Twilio simulator's account: any well-formed SID and token will do.
DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "dev-auth-token"


class Running(Protocol):
    @property
    def child(self) -> Child: ...

    def alive(self) -> bool: ...

    def stop(self) -> object: ...


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived: stop everything and exit 0."""


class _Died(Exception):
    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name} {detail}")


def _say(text: str, end: str = "\n") -> None:
    print(text, end=end, flush=True)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Supervisor:
    """What `run` started, in order, so it can watch it and stop it in reverse.

    Each service is started as devstack.stack.Service (the tests' and bench's
    Stack start theirs the same way); this adds the fixed ports of `make run`,
    its progress lines and the watch that stops everything when a part dies.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.parts: list[tuple[str, Running]] = []

    def step(self, name: str, start: Callable[[], tuple[Running | None, str]]) -> None:
        _say(f"  {name:<10} starting ...", end="")
        began = time.monotonic()
        try:
            part, where = start()
        except _Stop:
            _say(" interrupted")
            raise
        except BaseException:
            _say(" failed")
            raise
        if part is not None:
            self.parts.append((name, part))
        _say(f" ready  {where}  ({time.monotonic() - began:.1f}s)")

    def watch(self) -> None:
        while True:
            for name, part in self.parts:
                if not part.alive():
                    child = part.child
                    raise _Died(
                        name,
                        f"exited unexpectedly (code {child.returncode}); "
                        f"end of {_relative(child.log_file)}:\n{child.tail(30)}",
                    )
            time.sleep(0.5)

    def stop(self) -> None:
        for name, part in reversed(self.parts):
            _say(f"  {name:<10} stopping ...", end="")
            try:
                part.stop()
            except Exception as err:  # keep stopping the rest
                _say(f" failed: {err}")
                continue
            _say(" stopped")
        self.parts.clear()


def _service_env(
    bootstrap: str, database_url: str, clickhouse_url: str, run_dir: Path
) -> dict[str, str]:
    env = dict(os.environ)
    # Without Twilio credentials the local simulator plays Twilio's part.
    if not env.get("TWILIO_ACCOUNT_SID") and not env.get("TWILIO_AUTH_TOKEN"):
        env["SWITCHBOARD_TWILIO_SIMULATED"] = "1"
        sim_bind = env.get("TWILIO_SIM_BIND") or BINDS["twilio_sim"]
        env.setdefault("TWILIO_API_BASE_URL", f"http://{sim_bind}")
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        DATABASE_URL=database_url,
        CLICKHOUSE_URL=clickhouse_url,
        PYTHONUNBUFFERED="1",
    )
    defaults = {
        # The dev token, the simulator and one-replica topics are refused in production.
        "SWITCHBOARD_ENV": settings.DEVELOPMENT,
        "KAFKA_TOPIC_PREFIX": "switchboard.",
        "ADMIN_API_TOKEN": DEV_ADMIN_TOKEN,
        "TWILIO_ACCOUNT_SID": DEV_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEV_AUTH_TOKEN,
        "TWILIO_VALIDATE_SIGNATURES": "true",
        "INGRESS_SPOOL_DIR": str(run_dir / "spool" / "ingress"),
        **{f"{name.upper()}_BIND": bind for name, bind in BINDS.items()},
    }
    for name, value in defaults.items():
        if not env.get(name):
            env[name] = value
    if not env.get("ROUTER_URL"):
        env["ROUTER_URL"] = "http://" + env["ROUTER_BIND"]
    # Whom router asks for a caller's erasure and export (services/router/privacy.py).
    for name in ("ingress", "analytics", "recordings"):
        if not env.get(f"{name.upper()}_URL"):
            env[f"{name.upper()}_URL"] = "http://" + env[f"{name.upper()}_BIND"]
    return env


def _start_service(name: str, env: dict[str, str], logs: Path) -> tuple[Running, str]:
    if importlib.util.find_spec(f"services.{name}.__main__") is None:
        raise StartError(f"{name}: services/{name}/__main__.py does not exist yet")
    bind = env[f"{name.upper()}_BIND"]
    host, port = split_address(bind)
    ensure_port_free(host, port, name)
    # The bind variable is already in `env`; Service sets it from the port as well.
    service = Service(
        name,
        env,
        port,
        logs,
        bind_variable=f"{name.upper()}_BIND",
        host=host,
        append_log=False,
    ).start()
    return service, service.url


def _install_signal_handlers() -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        # A second signal while stopping must not cut the orderly shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="switchboard run",
        description="Run Kafka, PostgreSQL, the services and the nginx edge on this machine.",
    )
    parser.add_argument(
        "--services",
        default=",".join(SERVICES),
        help="comma-separated services to start (default: %(default)s)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO_ROOT / ".run",
        help="where data and logs live (default: .run/ in the repository)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    services = [name.strip() for name in args.services.split(",") if name.strip()]
    unknown = [name for name in services if name not in SERVICES]
    if unknown:
        print(f"switchboard run: unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    settings.load_env_file()
    # Before anything reads the settings: production (the default) refuses a
    # single-node broker's topics and the development admin token.
    os.environ.setdefault("SWITCHBOARD_ENV", settings.DEVELOPMENT)
    run_dir: Path = args.run_dir.resolve()
    stack = Supervisor(run_dir)
    stack.logs.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o755)
    lock = (run_dir / "run.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"switchboard run: another `switchboard run` is using {run_dir}", file=sys.stderr)
        return 1
    _install_signal_handlers()
    _say(f"Switchboard: starting on this machine (state and logs in {_relative(run_dir)}/)")
    code = 0
    try:
        code = _bring_up(stack, services)
    except _Stop:
        _say("\nStopping Switchboard ...")
    except (StartError, _Died, OSError, settings.ConfigError) as err:
        print(f"\nswitchboard run: {err}\n", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _say("Switchboard stopped." if code == 0 else "Switchboard stopped after a failure.")
    return code


def _bring_up(stack: Supervisor, services: list[str]) -> int:
    run_dir, logs = stack.run_dir, stack.logs
    bootstrap = settings.env_str("KAFKA_BOOTSTRAP_SERVERS", "")
    if bootstrap:
        _say(f"  kafka      external  {bootstrap}")
    else:

        def start_kafka() -> tuple[Running, str]:
            broker = kafka.start_kafka(
                run_dir / "kafka", KAFKA_PORT, KAFKA_CONTROLLER_PORT, log_file=logs / "kafka.log"
            )
            return broker, broker.bootstrap

        stack.step("kafka", start_kafka)
        bootstrap = f"127.0.0.1:{KAFKA_PORT}"

    database_url = settings.env_str("DATABASE_URL", "")
    if database_url:
        _say("  postgres   external  (DATABASE_URL)")
    else:

        def start_postgres() -> tuple[Running, str]:
            cluster = postgres.start_postgres(
                postgres.usable_dir(run_dir / "postgres"),
                POSTGRES_PORT,
                log_file=logs / "postgres.log",
            )
            return cluster, cluster.url

        stack.step("postgres", start_postgres)
        database_url = f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/{postgres.DATABASE}"

    clickhouse_url = settings.env_str("CLICKHOUSE_URL", f"chdb://{run_dir / 'chdb'}")
    topics = Topics.from_env()

    def create_topics() -> tuple[None, str]:
        ensure_topics(bootstrap, topics)
        return None, f"{topics.prefix}*"

    stack.step("topics", create_topics)

    env = _service_env(bootstrap, database_url, clickhouse_url, run_dir)
    if env.get("SWITCHBOARD_TWILIO_SIMULATED"):
        _say(
            "  twilio     no TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN set: "
            f"using the local Twilio simulator at {env['TWILIO_API_BASE_URL']}"
        )
        stack.step("twilio_sim", functools.partial(_start_service, "twilio_sim", env, logs))
    for name in services:
        stack.step(name, functools.partial(_start_service, name, env, logs))

    edge_bind = settings.env_str("EDGE_BIND", EDGE_BIND)
    upstreams = {name: env[f"{name.upper()}_BIND"] for name in SERVICES}
    edge_url = ""

    def start_edge() -> tuple[Running, str]:
        nonlocal edge_url
        edge = nginx.start_nginx(
            run_dir / "nginx", edge_bind, upstreams, log_file=logs / "edge.log"
        )
        edge_url = edge.url
        return edge, edge.url

    stack.step("edge", start_edge)
    _banner(edge_url, env, logs, [part for part, _ in stack.parts])
    stack.watch()
    return 0


def _banner(edge_url: str, env: dict[str, str], logs: Path, names: list[str]) -> None:
    token = env["ADMIN_API_TOKEN"]
    shown = token if token == DEV_ADMIN_TOKEN else "(your ADMIN_API_TOKEN)"
    twilio = (
        f"account {env['TWILIO_ACCOUNT_SID']}, auth token {env['TWILIO_AUTH_TOKEN']}"
        if env["TWILIO_AUTH_TOKEN"] == DEV_AUTH_TOKEN
        else f"account {env['TWILIO_ACCOUNT_SID']} (your TWILIO_AUTH_TOKEN)"
    )
    _say("")
    _say(f"Switchboard is up: {edge_url}")
    _say(f"  admin token  {shown}   (Authorization: Bearer <token>)")
    _say(f"  twilio       {twilio}; signatures checked: {env['TWILIO_VALIDATE_SIGNATURES']}")
    _say(f"  logs         {_relative(logs)}/<name>.log  ({', '.join(names)})")
    _say("  Press Ctrl-C to stop.")


if __name__ == "__main__":
    sys.exit(main())
