"""Which clients want reports: router's `client.settings-changed`, kept in reporting's PostgreSQL.

A small consumer of the compacted client-events topic (its own group), a
switchboard.consumer.StreamProcessor with reporting's write step: each
`client.settings-changed` has its time zone, name,
`notifications.reports` ({weekly, monthly, email}), `retentionDays` and
`purgeAfter` (for housekeeping, services/reporting/housekeeping.py) upserted, the newest
`occurredAt` winning; a `caller.erased` is handed to the reports' erasure
(erasure.py). Both are idempotent, and offsets are committed only after the
write, so at-least-once delivery and a replay change nothing. A write that
fails (the database or storage down) is retried with back-off from the
event that failed; invalid messages leave through the dead-letter topic.
Events from before notifications existed, or with none, mean reports off.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from confluent_kafka import Message

from services.reporting.reports.store import ReportClient, ReportStore
from switchboard.consumer import Batch, Settings, StreamProcessor
from switchboard.events import Event, decode, parse_timestamp
from switchboard.kafka import Topics

CONSUMER_NAME = "reporting-reports"
# A batch is what one poll brings, up to this many events.
_BATCH_SIZE = 100
_COMMIT_EVERY_SECONDS = 1.0
_RETRY_FIRST_SECONDS = 0.5
_RETRY_MAX_SECONDS = 30.0


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
        retention_days=_days(data.get("retentionDays")),
    )


def _days(value: object) -> int | None:
    """A positive whole number of days, or None (absent, null or not a day count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def _event(msg: Message) -> Event:
    return decode(msg.value())


class ClientsListener(StreamProcessor[Event]):
    """Keeps `reporting.report_clients` up to date from client-events; `start()`, `stop()`."""

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
        self.store = store
        self.on_change = on_change
        self.on_erased = on_erased
        super().__init__(
            CONSUMER_NAME,
            Settings(
                bootstrap=bootstrap,
                group_id=group_id,
                subscribe=(topics.client_events,),
                topics=topics,
                batch_size=_BATCH_SIZE,
                commit_every=_COMMIT_EVERY_SECONDS,
                retry_first=_RETRY_FIRST_SECONDS,
                retry_most=_RETRY_MAX_SECONDS,
            ),
            decode=_event,
            write=self.write,
            kind=attrgetter("type"),
        )

    def write(self, batch: Batch[Event]) -> None:
        """In the writer thread: each event handled in order; a retry resumes where one failed."""
        for index in range(batch.done, len(batch.items)):
            self.handle(batch.items[index])
            batch.done = index + 1

    def handle(self, event: Event) -> None:
        """Save a client's report settings, or erase a caller from the stored reports."""
        if event.type == "client.settings-changed":
            client = report_client(event)
            self.store.save_client(client)
            if self.on_change is not None:
                self.on_change(client)
        elif event.type == "caller.erased" and event.data.get("number"):
            if self.on_erased is not None:
                self.on_erased(event.data["number"], event.data["token"])
