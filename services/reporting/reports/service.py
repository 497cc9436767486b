"""The client reports as one object the reporting app mounts: routes, scheduler, clients consumer.

`ReportService.from_config` opens what reports need (PostgreSQL, the
document store, the analytics API, SMTP); `blueprint()` is the HTTP face;
`start()` / `stop()` run the scheduler and the consumer of client settings;
`problems()` is what /readyz reports (a failing report makes the service
not ready until it is built); `install_metrics` adds the reports' gauges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage

from flask import Blueprint, Flask

from services.reporting.housekeeping import Housekeeping
from services.reporting.reports import mail
from services.reporting.reports.api import reports_api
from services.reporting.reports.builder import FigureSource, ReportBuilder
from services.reporting.reports.clients import ClientsListener
from services.reporting.reports.config import ReportsConfig
from services.reporting.reports.erasure import erase_caller
from services.reporting.reports.figures import AnalyticsFigures
from services.reporting.reports.files import DocumentStore, open_documents
from services.reporting.reports.periods import Period
from services.reporting.reports.scheduler import Clock, Scheduler, utc_now
from services.reporting.reports.store import Report, ReportStore, apply_migrations
from switchboard.auth import KeyResolver
from switchboard.http import ApiError, failure, health_routes, install_error_handlers
from switchboard.metrics import Metrics, install_metrics

log = logging.getLogger(__name__)


class ReportService:
    def __init__(
        self,
        config: ReportsConfig,
        store: ReportStore,
        source: FigureSource,
        files: DocumentStore,
        send: Callable[[EmailMessage], None],
        clock: Clock = utc_now,
        keys: KeyResolver | None = None,
        sender: str = "Switchboard <reports@switchboard.localhost>",
    ) -> None:
        self.config = config
        self.store = store
        self.files = files
        self.keys = keys or KeyResolver(config.router_url)
        self.builder = ReportBuilder(store, source, files, send, sender)
        housekeeping = Housekeeping(store.pool, config.retention_days)
        self.scheduler = Scheduler(config, store, self.builder, clock, housekeeping=housekeeping)
        self.listener: ClientsListener | None = None

    @classmethod
    def from_config(
        cls, config: ReportsConfig, clock: Clock = utc_now, migrate: bool = True
    ) -> ReportService:
        if migrate:
            apply_migrations(config.database_url)
        source = AnalyticsFigures(
            config.analytics_url, config.admin_token, config.analytics_timeout_seconds
        )

        def send(msg: EmailMessage) -> None:
            mail.send(config.smtp_url, msg)

        return cls(
            config,
            ReportStore.open(config.database_url),
            source,
            open_documents(config),
            send,
            clock,
            sender=config.mail_from,
        )

    def blueprint(self) -> Blueprint:
        return reports_api(self)

    def start(self, listen: bool = True) -> None:
        """Start the scheduler and, unless told not to, the consumer of client settings."""
        if listen and self.listener is None:
            self.listener = ClientsListener(
                self.config.kafka_bootstrap,
                self.config.topics,
                self.config.group_id,
                self.store,
                on_change=self.scheduler.client_due,
                on_erased=self.erase_caller,
            )
            self.listener.start()
        self.scheduler.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.scheduler.stop(timeout)
        if self.listener is not None:
            self.listener.stop(timeout=timeout)

    def close(self) -> None:
        self.stop()
        self.store.close()

    def erase_caller(self, number: str, token: str) -> None:
        erase_caller(self.store, self.files, number, token)

    def build_now(self, client_id: str, period: Period) -> tuple[Report, int]:
        """The report of this client and period, built now unless it exists (200 then, else 201)."""
        client = self.store.client(client_id)
        if client is None or client.deleted:
            raise ApiError(404, "not_found", "no such client")
        report, created = self.store.claim_slot(
            client, period.kind, period.first, period.last, "request"
        )
        if not created and report.status in ("built", "sent"):
            return report, 200
        taken = self.store.take(self.scheduler.worker, self.config.lease_seconds, report.id)
        if taken is not None and not self.scheduler.build(taken):
            failed = self.store.report(report.id)
            reason = failed.last_error if failed else "unknown"
            raise ApiError(
                503, "report_failed", f"report {report.id} failed, retried later: {reason}"
            )
        done = self.store.report(report.id)
        assert done is not None
        return done, 201 if created else 200

    def problems(self) -> dict[str, str]:
        """What keeps reports from being ready: failing builds, a stopped loop or consumer."""
        found: dict[str, str] = {}
        failing = self.store.failing()
        if failing:
            first = failing[0]
            found["reports"] = (
                f"{len(failing)} report(s) failing, retried; first {first.id} "
                f"({first.client_id} {first.period} {first.period_first}): {first.last_error}"
            )
        if self.scheduler.error is not None:
            found["scheduler"] = str(self.scheduler.error)
        listener = self.listener
        if listener is not None and not listener.alive:
            found["reportClients"] = f"stopped: {listener.error}" if listener.error else "stopped"
        return found

    def install_metrics(self, metrics: Metrics) -> None:
        def by_status() -> dict[tuple[str, ...], float]:
            counts = self.store.count_by_status()
            return {(status,): float(counts.get(status, 0)) for status in STATUSES}

        metrics.on_scrape_series(
            "reports", "Reports by status (failed: waiting for a retry)", ("status",), by_status
        )


STATUSES = ("pending", "building", "built", "sent", "failed")


def mount(app: Flask, service: ReportService, metrics: Metrics | None = None) -> None:
    """Add the reports to a reporting app: the routes, and the gauges if it has metrics."""
    app.register_blueprint(service.blueprint())
    if metrics is not None:
        service.install_metrics(metrics)


def standalone_app(service: ReportService) -> Flask:
    """An app of the reports alone: their routes, /healthz, /readyz and /metrics."""
    app = Flask("services.reporting.reports")
    install_error_handlers(app)
    mount(app, service, install_metrics(app, "reporting"))

    def problems() -> dict[str, str]:
        try:
            service.store.ping()
            return service.problems()
        except Exception as err:  # the database does not answer: not ready
            return {"database": failure(err)}

    health_routes(app, problems)
    return app
