"""Which clients want reports: router's `client.settings-changed`, kept in reporting's PostgreSQL.

A small consumer of the compacted client-events topic (its own group): each
event's time zone, name and `notifications.reports` ({weekly, monthly,
email}) are upserted, the newest `occurredAt` winning, then the offset is
committed: at-least-once, and a replay changes nothing. A `caller.erased`
is handed to the reports' erasure (erasure.py), as idempotent. Invalid messages
leave through the dead-letter topic. Events from before notifications
existed, or with none, mean reports off.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer

from services.reporting.reports.store import ReportClient, ReportStore
from switchboard import consumer as pipeline
from switchboard import kafka
from switchboard.events import Event, decode, parse_timestamp
from switchboard.kafka import EventProducer, Topics

log = logging.getLogger(__name__)

CONSUMER_NAME = "reporting-reports"
_POLL_SECONDS = 0.5


def report_client(event: Event) -> ReportClient:
    """What reporting keeps of one `client.settings-changed` (pure)."""
    data = event.data
    reports = (data.get("notifications") or {}).get("reports") or {}
    weekly, monthly = bool(reports.get("weekly")), bool(reports.get("monthly"))
    return ReportClient(
        client_id=data["clientId"],
        name=data.get("name"),
        timezone=data.get("timezone") or "UTC",
        weekly=weekly,
        monthly=monthly,
        emails=tuple(reports.get("email") or ()),
        reports_since=event.occurred_at if weekly or monthly else None,
        deleted=bool(data.get("deleted")),
        occurred_at=event.occurred_at,
        purge_after=parse_timestamp(data["purgeAfter"]) if data.get("purgeAfter") else None,
    )


class ClientsListener:
    """Keeps `reporting.report_clients` up to date from client-events."""

    thread_name = "report-clients"

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        group_id: str,
        store: ReportStore,
        on_change: Callable[[ReportClient], None] | None = None,
        on_erased: Callable[[str, str], None] | None = None,
    ) -> None:
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.bootstrap = bootstrap
        self.topics = topics
        self.group_id = group_id
        self.store = store
        self.on_change = on_change
        self.on_erased = on_erased
        self.producer = EventProducer(bootstrap)
        self._decode = pipeline.Decoder(
            decode, lambda: self.producer, topics, CONSUMER_NAME, pipeline.InvalidRatioGuard()
        )
        self._offsets = pipeline.Offsets(1.0)
        self._backoff = pipeline.Backoff(0.5, 30.0)
        self.progress = pipeline.Progress(CONSUMER_NAME)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.error is None

    def _run(self) -> None:
        try:
            self.run()
        except BaseException:
            pass  # run() recorded it in self.error and logged it

    def run(self) -> None:
        consumer = Consumer(
            kafka.consumer_config(self.bootstrap, self.group_id, **{"client.id": CONSUMER_NAME})
        )
        consumer.subscribe([self.topics.client_events], on_revoke=self._revoked)
        try:
            while not self._stopping.is_set():
                self._step(consumer)
            self._offsets.commit(consumer)
        except BaseException as err:
            self.error = err
            log.critical("report clients consumer stopped: %s", err, exc_info=True)
            raise
        finally:
            consumer.close()
            self.producer.close(timeout=5)

    def _revoked(self, consumer: Consumer, partitions: object) -> None:
        self._offsets.commit(consumer)
        self._offsets.forget()
        self.progress.forget()

    def _step(self, consumer: Consumer) -> None:
        self.progress.refresh(consumer, self._offsets.committed, False)
        if self._offsets.commit_due(time.monotonic()):
            self._offsets.commit(consumer)
        polled = consumer.poll(_POLL_SECONDS)
        for msg in pipeline.messages([polled] if polled is not None else []):
            event = self._decode(msg)
            if event is not None and event.type == "client.settings-changed":
                if not self._write(event):
                    return  # stopping before it was saved: read again by the next owner
            if event is not None and event.type == "caller.erased" and event.data.get("number"):
                if not self._retry(functools.partial(self._erase, event)):
                    return
            if event is not None:
                self.progress.consumed({event.type: 1})
            self._offsets.mark(msg)

    def _write(self, event: Event) -> bool:
        """Save the event's client, retrying while the database is down; False if stopped."""
        client = report_client(event)
        if not self._retry(lambda: self.store.save_client(client)):
            return False
        if self.on_change is not None:
            self.on_change(client)
        return True

    def _erase(self, event: Event) -> None:
        if self.on_erased is not None:
            self.on_erased(event.data["number"], event.data["token"])

    def _retry(self, work: Callable[[], None]) -> bool:
        """Run `work` until it succeeds (the database or storage may be down); False if stopped."""
        while not self._stopping.is_set():
            try:
                work()
                self._backoff.succeeded()
                return True
            except Exception as err:  # down for now: the same event again, later
                delay = self._backoff.failed()
                log.warning(
                    "report clients: handling an event failed (%s), retry in %.1f s", err, delay
                )
                self._stopping.wait(delay)
        return False
