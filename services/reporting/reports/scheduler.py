"""The report scheduler: finds the reports that fell due, claims each once, builds what it holds.

Every `interval_seconds` (or at once when woken) it looks at every client
that wants reports: each week or month whose report fell due (08:00 local,
Monday or the 1st) since the client turned reports on, and within the
catch-up window, is claimed by inserting its row (the unique key per
client, kind and first day makes a second insert a no-op). Then it takes
claimed reports one at a time and builds them. A claim is a lease: a
scheduler that dies mid-build loses it when it expires, and the next look,
by this process after a restart or by another, takes the report over. So a
restart neither skips a report (the due period is still found) nor doubles
one (the row exists). A failed build is kept with its reason and retried
with a doubling delay; failing reports show in /readyz and in metrics. The
reports of a deleted client go once router's `purgeAfter` has passed, and
the same loop runs reporting's housekeeping (services/reporting/housekeeping.py:
the client's alerts and texts, and everyone's past their retention) once an hour.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.reporting.housekeeping import Housekeeping
from services.reporting.reports.builder import ReportBuilder
from services.reporting.reports.config import ReportsConfig
from services.reporting.reports.periods import PERIODS, due_periods
from services.reporting.reports.store import Report, ReportClient, ReportStore
from switchboard.metrics import counter

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def builds_counter() -> Any:
    """Report builds by kind and outcome (made when a scheduler is, as switchboard.metrics asks)."""
    return counter(
        "reports_builds_total",
        "Report builds by period kind and outcome (built, failed, lost: another holder took it)",
        ("service", "period", "outcome"),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    thread_name = "report-scheduler"

    def __init__(
        self,
        config: ReportsConfig,
        store: ReportStore,
        builder: ReportBuilder,
        clock: Clock = utc_now,
        service: str = "reporting",
        housekeeping: Housekeeping | None = None,
    ) -> None:
        self.config = config
        self.housekeeping = housekeeping
        self.store = store
        self.builder = builder
        self.clock = clock
        self.service = service
        self.worker = worker_name()
        self.builds = builds_counter()
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one look, as the loop runs it (tests call it directly)

    def claim_due(self) -> list[Report]:
        """Insert the row of every report that fell due; the ones this call created."""
        now = self.clock()
        window = now - timedelta(days=self.config.catch_up_days)
        created = []
        for client in self.store.subscribed_clients():
            since = max(client.reports_since or window, window)
            for kind in PERIODS:
                if not client.wants(kind):
                    continue
                for period in due_periods(kind, client.timezone, now, since):
                    report, new = self.store.claim_slot(
                        client, kind, period.first, period.last, "schedule"
                    )
                    if new:
                        log.info("report due: %s %s %s", client.client_id, kind, period.first)
                        created.append(report)
        return created

    def build_claimed(self, limit: int = 100) -> int:
        """Take and build claimed reports until none is ready; how many were taken."""
        taken = 0
        while taken < limit and not self._stopping.is_set():
            report = self.store.take(self.worker, self.config.lease_seconds)
            if report is None:
                break
            taken += 1
            self.build(report)
        return taken

    def build(self, report: Report) -> bool:
        """Build one report this scheduler holds; a failure is recorded for a retry."""
        try:
            done = self.builder.build(report, self.worker)
        except Exception as err:  # any failure: kept with its reason and retried
            delay = self.retry_delay(report.attempts)
            log.exception(
                "report %s failed (attempt %d), retry in %.0f s", report.id, report.attempts, delay
            )
            self.store.failed(report.id, self.worker, f"{type(err).__name__}: {err}", delay)
            self.builds.labels(self.service, report.period, "failed").inc()
            return False
        self.builds.labels(self.service, report.period, "built" if done else "lost").inc()
        return done

    def retry_delay(self, attempts: int) -> float:
        first, most = self.config.retry_first_seconds, self.config.retry_most_seconds
        return float(min(first * 2 ** max(attempts - 1, 0), most))

    def purge(self) -> int:
        """Delete the reports (documents, then rows) of deleted clients past their purge time."""
        purged = self.store.purge_due(self.clock())
        for report in purged:
            for key in (report.pdf_key, report.html_key):
                if key is not None:
                    self.builder.files.delete(key)
            self.store.delete_report(report.id)
        if purged:
            log.info("purged %d report(s) of deleted clients", len(purged))
        return len(purged)

    def housekeep(self) -> None:
        """Reporting's hourly purge and retention; a failure waits for the next look."""
        if self.housekeeping is None:
            return
        try:
            self.housekeeping.run_if_due(self.clock())
        except Exception:  # the reports must not stop for it: logged, tried at the next look
            log.exception("housekeeping failed, tried again at the next look")

    def run_once(self) -> None:
        self.purge()
        self.housekeep()
        self.claim_due()
        self.build_claimed()

    # --- the loop

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
                self.error = None
            except Exception as err:  # the database is down, say: noted, tried again
                self.error = err
                log.exception("report scheduler: look failed")
            self._wake.wait(self.config.interval_seconds)
            self._wake.clear()

    def client_due(self, client: ReportClient) -> None:
        """After a client's settings changed: look again soon."""
        if client.weekly or client.monthly:
            self.wake()
