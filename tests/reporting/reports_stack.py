"""One stack for the report tests: analytics fed through Kafka, reporting's PostgreSQL, SMTP.

Analytics (its app and consumer, in this process, on chDB) serves
`/api/analytics/*` over real HTTP; the known data set reaches it as events
built by their producers' builders (router, ingress), through Kafka and
analytics' own consumer. Router's `client.settings-changed` events (with the
clients' time zones and report settings) reach the reports' own consumer
the same way. A real SMTP server (aiosmtpd) receives the emails. A report
service is built per test over these, with the clock the test gives it.
"""

from __future__ import annotations

import email
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import psycopg
import requests
from aiosmtpd.controller import Controller
from psycopg import sql
from werkzeug.wrappers import Request, Response

from services.analytics.app import create_app as analytics_app
from services.analytics.config import Config as AnalyticsConfig
from services.reporting.reports import mail
from services.reporting.reports.clients import ClientsListener
from services.reporting.reports.config import ReportsConfig
from services.reporting.reports.figures import AnalyticsFigures
from services.reporting.reports.files import FolderDocuments
from services.reporting.reports.scheduler import Clock
from services.reporting.reports.service import ReportService
from services.reporting.reports.store import ReportStore, apply_migrations
from services.router import facts
from services.router.directory import Client, ClientSettings
from services.router.notifications import Notifications, Reports
from switchboard.events import Event
from switchboard.http import install_error_handlers
from switchboard.kafka import EventProducer, Topics, ensure_topics
from tests.analytics import call_scripts as script
from tests.analytics.key_service import KeyService
from tests.local_server import LocalServer
from tests.support import free_port, wait_until

ADMIN_TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Inbox:
    """aiosmtpd's handler: every message it accepted, with its envelope recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [msg for rcpt, msg in self.messages if address in rcpt]


class Gate:
    """A proxy in front of analytics that holds every request while closed.

    A report service pointed at it hangs inside its first build until the
    test opens the gate: the moment to kill it "in the middle of a run".
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.asked = threading.Event()
        self.open = threading.Event()
        self._server = LocalServer(self._wsgi, "analytics-gate").start()
        self.url = self._server.url

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.asked.set()
        self.open.wait(120)
        try:
            reply = requests.get(
                self.target + request.path,
                params=request.args.to_dict(),
                headers={"Authorization": request.headers.get("Authorization", "")},
                timeout=30,
            )
            response = Response(reply.content, reply.status_code, mimetype="application/json")
        except requests.RequestException:
            response = Response("{}", 502, mimetype="application/json")
        return response(environ, start_response)

    def stop(self) -> None:
        self.open.set()
        self._server.stop()


@dataclass
class Stack:
    kafka_bootstrap: str
    topics: Topics
    analytics_url: str
    keys: KeyService
    inbox: Inbox
    smtp_url: str
    documents: Path
    producer: EventProducer
    postgres_url: str
    services: list[ReportService] = field(default_factory=list)
    drops: list[Callable[[], None]] = field(default_factory=list)

    def config(self, database_url: str, **overrides: Any) -> ReportsConfig:
        values: dict[str, Any] = {
            "database_url": database_url,
            "admin_token": ADMIN_TOKEN,
            "analytics_url": self.analytics_url,
            "router_url": self.keys.url,
            "kafka_bootstrap": self.kafka_bootstrap,
            "topics": self.topics,
            "group_id": f"reports-{uuid.uuid4().hex[:8]}",
            "smtp_url": self.smtp_url,
            "storage_dir": str(self.documents),
            "interval_seconds": 3600.0,
            **overrides,
        }
        return ReportsConfig(**values)

    def service(
        self,
        clock: Clock | None = None,
        source: Any | None = None,
        listen: bool = False,
        **overrides: Any,
    ) -> ReportService:
        """A report service over this stack, on a database of its own (migrated).

        With `listen`, its consumer of client settings runs (wait for the
        clients with `wait_for_clients`); its scheduler never runs on its own:
        the tests drive it.
        """
        database_url = self.database()
        apply_migrations(database_url)
        config = self.config(database_url, **overrides)
        built = ReportService(
            config,
            ReportStore.open(config.database_url),
            source or AnalyticsFigures(config.analytics_url, config.admin_token),
            FolderDocuments(config.storage_dir),
            lambda msg: mail.send(config.smtp_url, msg),
            clock or (lambda: datetime.now(UTC)),
            sender=config.mail_from,
        )
        if listen:
            built.listener = ClientsListener(
                config.kafka_bootstrap,
                config.topics,
                config.group_id,
                built.store,
                on_erased=built.erase_caller,
            )
            built.listener.start()
        self.services.append(built)
        return built

    def database(self) -> str:
        """A fresh PostgreSQL database (dropped with the stack)."""
        url, drop = fresh_database(self.postgres_url)
        self.drops.append(drop)
        return url

    def publish(self, topic: str, events: list[Event], key: Callable[[Event], str | None]) -> None:
        for event in events:
            self.producer.publish(topic, event, key=key(event), timeout=10)

    def analytics(self, path: str, **params: str) -> dict[str, Any]:
        reply = requests.get(self.analytics_url + path, params=params, headers=AUTH, timeout=30)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def close(self) -> None:
        for service in self.services:
            service.stop(timeout=10)
            service.store.close()
        for drop in self.drops:
            drop()


def settings_changed(
    client_id: str,
    timezone: str,
    occurred: datetime,
    weekly: bool = True,
    monthly: bool = False,
    emails: tuple[str, ...] = (),
) -> Event:
    """Router's client.settings-changed for a client with these report settings."""
    settings = ClientSettings(name=f"Client {client_id}", recording_disclaimer=None).patched(
        {"timezone": timezone}
    )
    notifications = Notifications(reports=Reports(weekly=weekly, monthly=monthly, email=emails))
    event = facts.client_settings_changed(
        Client(client_id, settings, occurred, occurred), notifications
    )
    return script.happened(event, script.at(occurred, 0))


def fresh_database(postgres_url: str) -> tuple[str, Callable[[], None]]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    return url, drop


def open_stack(
    kafka_bootstrap: str,
    postgres_url: str,
    ch_url: str,
    ch_client: Any,
    folder: Path,
) -> Iterator[Stack]:
    """The stack, up; closed (servers stopped, databases dropped) when the generator ends."""
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:12]}.")
    ensure_topics(kafka_bootstrap, topics)
    ch_database = f"t_{uuid.uuid4().hex[:16]}"
    ch_client.command(f"CREATE DATABASE {ch_database}")
    keys = KeyService().__enter__()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    app = analytics_app(
        AnalyticsConfig(
            clickhouse_url=ch_url,
            clickhouse_database=ch_database,
            admin_token=ADMIN_TOKEN,
            kafka_bootstrap=kafka_bootstrap,
            topics=topics,
            group_id=f"analytics-{uuid.uuid4().hex[:8]}",
            batch_size=500,
            batch_seconds=0.2,
            router_url=keys.url,
            key_cache_seconds=0.0,
        ),
        start_consumer=True,
    )
    install_error_handlers(app)
    server = LocalServer(app, "analytics").start()
    producer = EventProducer(kafka_bootstrap)
    stack = Stack(
        kafka_bootstrap,
        topics,
        server.url,
        keys,
        inbox,
        f"smtp://127.0.0.1:{smtp.port}",
        folder,
        producer,
        postgres_url,
    )
    try:
        yield stack
    finally:
        stack.close()
        producer.close()
        server.stop()
        app.extensions["analytics"].close()
        smtp.stop()
        keys.__exit__(None, None, None)
        ch_client.command(f"DROP DATABASE IF EXISTS {ch_database}")


def wait_for_clients(service: ReportService, *client_ids: str) -> None:
    """Until the service's consumer has saved the settings of these clients."""
    wait_until(
        lambda: all(service.store.client(c) is not None for c in client_ids),
        timeout=60,
        message=f"report settings of {client_ids}",
    )


def wait_for_calls(stack: Stack, client_id: str, total: int) -> None:
    """Until analytics has folded `total` calls of the client (all time)."""

    def arrived() -> bool:
        summary = stack.analytics("/api/analytics/summary", clientId=client_id)
        return bool(summary["totalCalls"] == total)

    wait_until(arrived, timeout=60, message=f"analytics has {total} calls of {client_id}")
