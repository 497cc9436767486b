"""`switchboard run` (`make run`): the whole system on this machine.

The same devstack.stack.Stack the tests and benchmarks start, on fixed
addresses: Kafka (unless KAFKA_BOOTSTRAP_SERVERS names one), PostgreSQL
(unless DATABASE_URL does), the topics, the services with the environment
they need, then the nginx edge; then it waits. All state lives in .run/
(data, logs, the chDB folder). Ctrl-C or SIGTERM stops everything in reverse
order and exits 0; a part that dies is reported and everything stops with
exit code 1.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devstack import REPO_ROOT
from devstack.processes import StartError
from devstack.stack import GRAFANA_CLICKHOUSE_PASSWORD, GRAFANA_CLICKHOUSE_USER, Layout, Stack
from switchboard import settings
from switchboard.kafka import Topics

SERVICES = ("router", "ingress", "analytics", "recordings", "reporting")
KAFKA_PORT, KAFKA_CONTROLLER_PORT, POSTGRES_PORT = 9092, 9093, 5433
BINDS = {
    "ingress": "127.0.0.1:8081",
    "router": "127.0.0.1:8082",
    "analytics": "127.0.0.1:8083",
    "recordings": "127.0.0.1:8084",
    "reporting": "127.0.0.1:8085",
    "twilio_sim": "127.0.0.1:8090",
}
EDGE_BIND = "127.0.0.1:8080"
# The local mail catcher reporting sends its emails to (unless SMTP_URL names a server).
MAIL_BIND = "127.0.0.1:1025"
# analytics' read-only ClickHouse HTTP endpoint over its chDB, for Grafana.
CLICKHOUSE_HTTP_BIND = "127.0.0.1:8123"
DEV_ADMIN_TOKEN = settings.DEV_ADMIN_TOKEN
# The local Twilio simulator's account: any well-formed SID and token will do.
DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "dev-auth-token"


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived: stop everything and exit 0."""


def _say(text: str) -> None:
    print(text, flush=True)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _service_env(run_dir: Path) -> dict[str, str]:
    """Your environment (and .env), with what `make run` fills in where you set nothing.

    Where Kafka, PostgreSQL and the services are is the stack's part; this is the rest.
    """
    env = {name: value for name, value in os.environ.items() if value}
    # Without Twilio credentials the local simulator plays Twilio's part.
    if not env.get("TWILIO_ACCOUNT_SID") and not env.get("TWILIO_AUTH_TOKEN"):
        env["SWITCHBOARD_TWILIO_SIMULATED"] = "1"
        sim_bind = env.get("TWILIO_SIM_BIND") or BINDS["twilio_sim"]
        env.setdefault("TWILIO_API_BASE_URL", f"http://{sim_bind}")
    defaults = {
        # The dev token, the simulator and one-replica topics are refused in production.
        "SWITCHBOARD_ENV": settings.DEVELOPMENT,
        "ADMIN_API_TOKEN": DEV_ADMIN_TOKEN,
        "TWILIO_ACCOUNT_SID": DEV_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEV_AUTH_TOKEN,
        "TWILIO_VALIDATE_SIGNATURES": "true",
        "INGRESS_SPOOL_DIR": str(run_dir / "spool" / "ingress"),
        "ANALYTICS_GROUP_ID": "analytics",
        "CLICKHOUSE_HTTP_BIND": CLICKHOUSE_HTTP_BIND,
        "GRAFANA_CLICKHOUSE_USER": GRAFANA_CLICKHOUSE_USER,
        "GRAFANA_CLICKHOUSE_PASSWORD": GRAFANA_CLICKHOUSE_PASSWORD,
        "EDGE_BIND": EDGE_BIND,
        **{f"{name.upper()}_BIND": bind for name, bind in BINDS.items()},
    }
    if not env.get("CLICKHOUSE_URL", "chdb:").startswith("chdb:"):
        # A ClickHouse server of your own is Grafana's datasource itself.
        defaults.pop("CLICKHOUSE_HTTP_BIND")
    for name, value in defaults.items():
        env.setdefault(name, value)
    return env


def _layout(env: dict[str, str], services: list[str]) -> Layout:
    binds = {name: env[f"{name.upper()}_BIND"] for name in services}
    binds["edge"] = env["EDGE_BIND"]
    binds["mail"] = MAIL_BIND
    return Layout(binds, (KAFKA_PORT, KAFKA_CONTROLLER_PORT), POSTGRES_PORT)


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
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o755)
    lock = (run_dir / "run.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"switchboard run: another `switchboard run` is using {run_dir}", file=sys.stderr)
        return 1
    env = _service_env(run_dir)
    if env.get("SWITCHBOARD_TWILIO_SIMULATED"):
        services.insert(0, "twilio_sim")
    try:
        topics = Topics.from_env()
    except settings.ConfigError as err:
        print(f"switchboard run: {err}", file=sys.stderr)
        return 1
    stack = Stack(
        run_dir,
        kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS"),
        database_url=env.get("DATABASE_URL"),
        services=services,
        env=env,
        say=_say,
        layout=_layout(env, services),
        topics=topics,
    )
    _install_signal_handlers()
    _say(f"Switchboard: starting on this machine (state and logs in {_relative(run_dir)}/)")
    if env.get("SWITCHBOARD_TWILIO_SIMULATED"):
        _say(
            "  no TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN set: "
            f"the local Twilio simulator plays Twilio at {env['TWILIO_API_BASE_URL']}"
        )
    code = 0
    try:
        stack.start()
        _banner(stack)
        while (failure := stack.dead()) is None:
            time.sleep(0.5)
        raise StartError(failure)
    except _Stop:
        _say("\nStopping Switchboard ...")
    except (StartError, OSError, settings.ConfigError) as err:
        print(f"\nswitchboard run: {err}\n", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _say("Switchboard stopped." if code == 0 else "Switchboard stopped after a failure.")
    return code


def _banner(stack: Stack) -> None:
    env = stack.env
    token = env["ADMIN_API_TOKEN"]
    shown = token if token == DEV_ADMIN_TOKEN else "(your ADMIN_API_TOKEN)"
    twilio = (
        f"account {env['TWILIO_ACCOUNT_SID']}, auth token {env['TWILIO_AUTH_TOKEN']}"
        if env["TWILIO_AUTH_TOKEN"] == DEV_AUTH_TOKEN
        else f"account {env['TWILIO_ACCOUNT_SID']} (your TWILIO_AUTH_TOKEN)"
    )
    names = [*(["kafka"] if stack.kafka else []), *(["postgres"] if stack.postgres else [])]
    names += [*stack.services, "edge"]
    _say("")
    _say(f"Switchboard is up: {stack.url}")
    _say(f"  admin token  {shown}   (Authorization: Bearer <token>)")
    _say(f"  twilio       {twilio}; signatures checked: {env['TWILIO_VALIDATE_SIGNATURES']}")
    _say(f"  logs         {_relative(stack.logs)}/<name>.log  ({', '.join(names)})")
    if "analytics" in stack.services and env.get("CLICKHOUSE_HTTP_BIND"):
        host, _, port = env["CLICKHOUSE_HTTP_BIND"].rpartition(":")
        user, password = env["GRAFANA_CLICKHOUSE_USER"], env["GRAFANA_CLICKHOUSE_PASSWORD"]
        database = env.get("CLICKHOUSE_DATABASE") or "switchboard"
        _say(
            f"  grafana      ClickHouse datasource: HTTP, server {host}, port {port}, "
            f"user {user}, password {password}, default database {database} (read-only)"
        )
    if stack.mail is not None:
        _say(
            f"  mail         caught at {stack.mail.url}, every message a file in "
            f"{_relative(stack.mail.maildir)}/new/ (a Maildir)"
        )
    _say("  Press Ctrl-C to stop.")


if __name__ == "__main__":
    sys.exit(main())
