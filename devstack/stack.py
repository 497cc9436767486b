"""A whole Switchboard on this machine: `make run`, and every bench, fault or end-to-end run.

`Stack` starts what a run needs as child processes: its own Kafka broker and
PostgreSQL cluster (or a fresh topic prefix and database on ones it is
given), the Twilio simulator, router, analytics, ingress (and recordings
when asked), and the nginx edge in front of them. A test's stack takes free
loopback ports and throw-away data; `make run` (devstack.run) gives it a
`Layout`: fixed addresses and data that outlives the run. `Service` is one
such child; the tests' ServiceProcess starts theirs with it too. A stack can
kill, stop and restart any part, as the fault scenarios do, and `close()`
stops everything it started. Children die with the thread that started them
(see devstack.processes), so start and restart parts from a thread that
outlives them: the main thread.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from devstack import REPO_ROOT, kafka, nginx, postgres
from devstack.mailcatcher import MailCatcher
from devstack.processes import (
    Child,
    StartError,
    ensure_port_free,
    free_port,
    healthy,
    split_address,
)
from switchboard.kafka import Topics, ensure_topics

ADMIN_TOKEN = "bench-admin-token"
ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-twilio-auth-token"
# The read-only user of analytics' ClickHouse HTTP endpoint (Grafana's datasource).
GRAFANA_CLICKHOUSE_USER = "grafana"
GRAFANA_CLICKHOUSE_PASSWORD = "dev-grafana-password"
# The order matters: router needs the simulator's URL, ingress needs router's.
SERVICES = ("twilio_sim", "router", "analytics", "ingress")

Say = Callable[[str], None]


def quiet(_: str) -> None:
    """A `say` that says nothing (tests)."""


class Service:
    """One `python -m <module>` child serving HTTP on <host>:<port> (127.0.0.1 by default)."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        port: int,
        log_dir: Path,
        module: str | None = None,
        bind_variable: str | None = None,
        log_file: Path | None = None,
        append_log: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.name = name
        self.port = port
        local = "127.0.0.1" if host in ("0.0.0.0", "*", "") else host
        self.url = f"http://{local}:{port}"
        self.module = module or f"services.{name}"
        self.env = {
            **os.environ,
            **env,
            bind_variable or f"{name.upper()}_BIND": f"{host}:{port}",
            "PYTHONUNBUFFERED": "1",
        }
        self.log_file = log_file or log_dir / f"{name}.log"
        self.append_log = append_log
        self._child: Child | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def start(self, timeout: float = 90.0) -> Service:
        """Start the child and return once its /healthz answers (StartError if it never does)."""
        self._child = Child(
            self.name,
            [sys.executable, "-m", self.module],
            self.log_file,
            env=self.env,
            cwd=REPO_ROOT,
            append_log=self.append_log,
        ).start()
        self._child.wait_healthy(self.url, timeout)
        return self

    @property
    def child(self) -> Child:
        if self._child is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._child

    def alive(self) -> bool:
        return self._child is not None and self._child.alive()

    def kill(self) -> None:
        """SIGKILL the whole process group (gunicorn's master and its workers), as a crash."""
        if self._child is None or self._child.pid is None:
            return
        try:
            os.killpg(self._child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._child.stop(timeout=5)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code."""
        return self._child.stop(timeout) if self._child is not None else None

    def log_tail(self, lines: int = 40) -> str:
        return self._child.tail(lines) if self._child is not None else ""


@dataclass(frozen=True)
class Layout:
    """Fixed addresses and lasting data for a long-lived stack (`make run`).

    `binds` maps each service, and "edge", to host:port. PostgreSQL keeps its
    data in the stack's folder and syncs it to disk; logs start afresh.
    """

    binds: Mapping[str, str]
    kafka_ports: tuple[int, int]
    postgres_port: int


class Stack:
    """Kafka, PostgreSQL, the services and the edge for one run; see the module doc."""

    def __init__(
        self,
        folder: Path,
        kafka_bootstrap: str | None = None,
        postgres_url: str | None = None,
        services: Iterable[str] = SERVICES,
        edge: bool = True,
        env: Mapping[str, str] | None = None,
        say: Say = quiet,
        layout: Layout | None = None,
        topics: Topics | None = None,
        database_url: str | None = None,
    ) -> None:
        """`kafka_bootstrap` / `postgres_url` (a superuser DSN): use these instead of our own.

        `postgres_url` gets a fresh database that `close()` drops; `database_url`
        is used as it is. `env` overrides the settings the stack gives its services.
        """
        self.folder = folder.resolve()
        self.logs = self.folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.say = say
        self._given_kafka = kafka_bootstrap
        self._given_postgres = postgres_url
        self._given_database = database_url
        self.layout = layout
        self._wanted = tuple(services)
        self._with_edge = edge
        self._extra_env = dict(env or {})
        self.topics = topics or Topics(prefix=f"b{uuid.uuid4().hex[:10]}.")
        self.kafka: kafka.KafkaBroker | None = None
        self.postgres: postgres.PostgresCluster | None = None
        self.edge: nginx.Edge | None = None
        self.services: dict[str, Service] = {}
        self.bootstrap = ""
        self.database_url = ""
        self._database: str | None = None
        self._pg_scratch: Path | None = None
        self._pg_base: Path | None = None
        self._kafka_ports: tuple[int, int] = (0, 0)
        self._pg_port = 0
        # Where each service and the edge listen (host:port); free loopback ports by default.
        self.binds = {name: f"127.0.0.1:{free_port()}" for name in (*self._wanted, "edge")}
        if layout is not None:
            self.binds.update({name: layout.binds[name] for name in self.binds})
        self.ports = {name: split_address(self.binds[name])[1] for name in self._wanted}
        self.edge_port = split_address(self.binds["edge"])[1]
        self.env: dict[str, str] = {}
        # reporting's SMTP server: a local mail catcher keeping every message in mail/.
        self.mail_bind = (layout.binds.get("mail") if layout else None) or (
            f"127.0.0.1:{free_port()}"
        )
        self.mail: MailCatcher | None = None

    # ---- the whole stack -------------------------------------------------

    def start(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self._timed("kafka", self._start_kafka)
        self._timed("postgres", self._start_postgres)
        ensure_topics(self.bootstrap, self.topics)
        self.env = self._service_env()
        if "reporting" in self.ports and self.env["SMTP_URL"] == f"smtp://{self.mail_bind}":
            self.mail = MailCatcher(self.folder / "mail", self.mail_bind).start()
        for name in self._wanted:
            self._timed(name, lambda name=name: self.start_service(name))  # type: ignore[misc]
        if self._with_edge:
            self._timed("edge", self._start_edge)

    def _timed(self, what: str, start: Callable[[], object]) -> None:
        began = time.monotonic()
        start()
        external = {
            "kafka": self._given_kafka,
            "postgres": self._given_database or self._given_postgres,
        }
        if external.get(what):
            self.say(f"  {what:<11} external")
            return
        where = {"kafka": self.bootstrap, "postgres": self.database_url, "edge": self.url}.get(what)
        if what in self.ports:
            where = self.services[what].url
        self.say(f"  {what:<11} up  {where}  ({time.monotonic() - began:.1f}s)")

    def dead(self) -> str | None:
        """The first part that has exited, with its exit code and log tail; None while all run."""
        parts: list[tuple[str, Child | None]] = [
            ("kafka", self.kafka.child if self.kafka else None),
            ("postgres", self.postgres.child if self.postgres else None),
            *((name, service.child) for name, service in self.services.items()),
            ("edge", self.edge.child if self.edge else None),
        ]
        for name, child in parts:
            if child is not None and not child.alive():
                return (
                    f"{name} exited unexpectedly (code {child.returncode}); "
                    f"end of {child.log_file}:\n{child.tail(30)}"
                )
        return None

    @property
    def url(self) -> str:
        """The public base URL: the edge's, or ingress's when the run has no edge."""
        if not self._with_edge and "ingress" in self.ports:
            return f"http://127.0.0.1:{self.ports['ingress']}"
        return f"http://127.0.0.1:{self.edge_port}"

    def close(self) -> None:
        """Stop everything this stack started, in reverse order; drop what it created."""
        if self.edge is not None:
            self.edge.stop()
            self.edge = None
            self.say(f"  {'edge':<11} stopped")
        for name, service in reversed(list(self.services.items())):
            service.stop()
            self.say(f"  {name:<11} stopped")
        self.services.clear()
        if self.mail is not None:
            self.mail.stop()
            self.mail = None
        if self.kafka is not None:
            self.kafka.stop()
            self.kafka = None
            self.say(f"  {'kafka':<11} stopped")
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
            self.say(f"  {'postgres':<11} stopped")
        if self._database is not None and self._given_postgres:
            try:
                with psycopg.connect(self._given_postgres, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(self._database)
                        )
                    )
            except psycopg.Error:
                pass
            self._database = None
        if self.layout is None:
            for scratch in (self._pg_scratch, self._pg_base):
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)
            self._pg_scratch = self._pg_base = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # ---- Kafka -----------------------------------------------------------

    def _start_kafka(self) -> None:
        if self._given_kafka:
            self.bootstrap = self._given_kafka
            return
        self._kafka_ports = self.layout.kafka_ports if self.layout else (free_port(), free_port())
        self.kafka = kafka.start_kafka(
            self.folder / "kafka",
            *self._kafka_ports,
            log_file=self.logs / "kafka.log",
        )
        self.bootstrap = self.kafka.bootstrap

    def kill_kafka(self) -> None:
        """SIGKILL our broker, as a crash (no clean shutdown, no flushed logs)."""
        broker = self._own_kafka()
        pid = broker.child.pid
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        broker.child.stop(timeout=5)

    def restart_kafka(self) -> None:
        """Start our broker again on the same ports and data (after `kill_kafka`)."""
        broker = self._own_kafka()
        self.kafka = kafka.start_kafka(
            broker.data_dir,
            *self._kafka_ports,
            log_file=self.logs / "kafka.log",
        )

    def _own_kafka(self) -> kafka.KafkaBroker:
        if self.kafka is None:
            raise RuntimeError("this stack runs on a Kafka broker it did not start")
        return self.kafka

    # ---- PostgreSQL --------------------------------------------------------

    def _start_postgres(self) -> None:
        if self._given_database:
            self.database_url = self._given_database
            return
        if self.layout is not None:
            self._pg_base = postgres.usable_dir(self.folder / "postgres")
            self._pg_port = self.layout.postgres_port
            self.start_postgres()
            assert self.postgres is not None
            self.database_url = self.postgres.url
            return
        if self._given_postgres:
            self._database = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(self._given_postgres, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._database)))
            self.database_url = self._given_postgres.rsplit("/", 1)[0] + f"/{self._database}"
            return
        # The server runs as its own unprivileged user: every folder above it must be reachable.
        self._pg_scratch = Path(tempfile.mkdtemp(prefix="switchboard-bench-pg-"))
        self._pg_scratch.chmod(0o755)
        self._pg_base = postgres.usable_dir(self._pg_scratch / "postgres")
        self._pg_port = free_port()
        self.start_postgres()
        assert self.postgres is not None
        self.database_url = self.postgres.url

    def start_postgres(self) -> None:
        """Start (or start again, after `stop_postgres`) our cluster on the same port and data."""
        if self._pg_base is None:
            raise RuntimeError("this stack runs on a PostgreSQL it did not start")
        self.postgres = postgres.start_postgres(
            self._pg_base,
            self._pg_port,
            log_file=self.logs / "postgres.log",
            durable=self.layout is not None,
        )

    def stop_postgres(self) -> None:
        """Stop our cluster (fast shutdown: sessions are cut, as in an outage)."""
        if self.postgres is None:
            raise RuntimeError("this stack runs on a PostgreSQL it did not start")
        self.postgres.stop()

    # ---- the services ------------------------------------------------------

    def _service_env(self) -> dict[str, str]:
        env = {
            # A developer's .env (real Twilio credentials, say) must not leak in.
            "SWITCHBOARD_ENV_FILE": os.devnull,
            # Its short admin token and one-replica topics are refused in production.
            "SWITCHBOARD_ENV": "development",
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC_PREFIX": self.topics.prefix,
            "DATABASE_URL": self.database_url,
            "CLICKHOUSE_URL": f"chdb://{self.folder / 'chdb'}",
            "CLICKHOUSE_DATABASE": "switchboard",
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_VALIDATE_SIGNATURES": "true",
            "PUBLIC_BASE_URL": self.url,
            "TWILIO_WEBHOOK_URL": "",
            "INGRESS_SPOOL_DIR": str(self.folder / "spool"),
            "ANALYTICS_BATCH_SECONDS": "0.2",
            # Its own consumer group, also on a broker shared with other runs.
            "ANALYTICS_GROUP_ID": f"analytics-{self.topics.prefix.rstrip('.')}",
        }
        # Where router asks for TwiML's owner, and whom it asks for a caller's
        # erasure and export (services/router/privacy.py).
        for name in ("router", "ingress", "analytics", "recordings", "reporting"):
            if name in self.ports:
                env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{self.ports[name]}"
        if "recordings" in self.ports:
            env["RECORDINGS_STORAGE_DIR"] = str(self.folder / "recordings")
        if "twilio_sim" in self.ports:
            env["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{self.ports['twilio_sim']}"
            # Business hours follow the simulator's clock (POST /sim/clock; real time until set).
            env["ROUTER_CLOCK_URL"] = f"{env['TWILIO_API_BASE_URL']}/sim/clock"
        if "reporting" in self.ports:
            env["SMTP_URL"] = f"smtp://{self.mail_bind}"
            env["REPORTING_GROUP_ID"] = f"reporting-{self.topics.prefix.rstrip('.')}"
            env["REPORTS_STORAGE_DIR"] = str(self.folder / "reports")
        env.update(self._extra_env)
        if "analytics" in self.ports and env["CLICKHOUSE_URL"].startswith("chdb:"):
            # analytics serves its chDB read-only over ClickHouse's HTTP interface.
            env.setdefault("CLICKHOUSE_HTTP_BIND", f"127.0.0.1:{free_port()}")
            env.setdefault("GRAFANA_CLICKHOUSE_USER", GRAFANA_CLICKHOUSE_USER)
            env.setdefault("GRAFANA_CLICKHOUSE_PASSWORD", GRAFANA_CLICKHOUSE_PASSWORD)
        return env

    def start_service(self, name: str) -> Service:
        """Start `name` (again, after a stop or kill) on its address, with the stack's settings."""
        host, port = split_address(self.binds[name])
        ensure_port_free(host, port, name)
        service = Service(
            name,
            self.env,
            port,
            self.logs,
            bind_variable=f"{name.upper()}_BIND",
            host=host,
            # A long-lived stack's logs start afresh with each run; a test's
            # keep what a part wrote before it was restarted.
            append_log=self.layout is None or name in self.services,
        )
        self.services[name] = service.start()
        return service

    def service(self, name: str) -> Service:
        return self.services[name]

    # ---- the edge ------------------------------------------------------------

    def _start_edge(self) -> None:
        # Upstreams this run does not start (recordings, say) point at a port
        # nobody listens on: the edge answers 503 there, as in production.
        nobody = f"127.0.0.1:{free_port()}"
        upstreams = {
            name: f"127.0.0.1:{self.ports[name]}" if name in self.ports else nobody
            for name in nginx.UPSTREAMS
        }
        self.edge = nginx.start_nginx(
            self.folder / "edge",
            self.binds["edge"],
            upstreams,
            log_file=self.logs / "edge.log",
        )


__all__ = [
    "ACCOUNT_SID",
    "ADMIN_TOKEN",
    "AUTH_TOKEN",
    "Layout",
    "Service",
    "Stack",
    "StartError",
    "healthy",
    "quiet",
]
