"""The recordings worker: call and client events from Kafka into stored recordings, at least once.

It is a switchboard.consumer.StreamProcessor:

    poll -> decode (and validate) -> batch -> write -> commit

with the recordings' own write step: the batch's events handled in order,
each by the handler its type names in `HANDLERS` (other types are
skipped). Most take one small database write: call.routed (which client a
call belongs to), call.received (the caller's number, for erasure),
client.settings-changed (retention and whether to delete Twilio's copy),
caller.erased, and recording statuses other than `completed`. A `completed`
recording is archived (archiving.py): a download that may take a while,
which runs in the processor's writer thread while the loop keeps polling
(pausing the partitions once the next batch is full), so the group never
mistakes a long download for a dead consumer. Offsets are committed about
once a second, only for batches whose write has returned; a crash re-reads
at most the work in flight, and every handler is idempotent (the archive
on RecordingSid).

A download that fails for good is dead-lettered with the reason (and
announced as recording.failed); an event that does not decode is
dead-lettered by the processor, which stops loudly past a ratio of invalid
messages. Infrastructure trouble (database, storage, Kafka) fails the
write: the partitions are paused and the batch retried with backoff from
the event that failed, never skipping it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Message

from services.recordings.archiving import Archiver, Interrupted, RecordingFailed, RecordingReport
from services.recordings.config import Config
from services.recordings.metadata import ClientSettings
from services.recordings.store import Store
from switchboard import kafka
from switchboard.consumer import Batch, ProcessorStats, Settings, StreamProcessor
from switchboard.events import Event, InvalidEvent, decode, read_time
from switchboard.privacy import caller_token

log = logging.getLogger(__name__)

CONSUMER_NAME = "recordings"
# A batch is what one poll brings, up to this many events: the worker handles
# each as soon as it is read.
_BATCH_SIZE = 100
_COMMIT_EVERY_SECONDS = 1.0
_RETRY_FIRST_SECONDS = 0.5
_RETRY_MAX_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A decoded event with its message, which a handler may dead-letter."""

    msg: Message
    event: Event


def _delivery(msg: Message) -> Delivery:
    return Delivery(msg, decode(msg.value()))


def _kind(delivery: Delivery) -> str:
    return delivery.event.type


@dataclass
class WorkerStats(ProcessorStats):
    """The processor's counts and what the worker's handlers did."""

    ignored: int = 0
    archived: int = 0
    dead_lettered: int = 0


Handler = Callable[["RecordingsWorker", Message, Event], None]


class RecordingsWorker(StreamProcessor[Delivery]):
    """The stream processor with the recordings' write step; `start()` or `run()`, `stop()`."""

    thread_name = "recordings-worker"

    def __init__(
        self,
        config: Config,
        store: Store,
        archiver: Archiver,
        producer: kafka.EventProducer,
        group_id: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.archiver = archiver
        self.producer = producer
        self.group_id = group_id or config.group_id
        # Wakes the housekeeping pass when a client's settings changed; set by the app.
        self.on_settings_changed: Callable[[], None] | None = None
        # Deletes an erased caller's recordings (number, token); set by the app.
        self.on_caller_erased: Callable[[str, str], None] | None = None
        topics = config.topics
        super().__init__(
            CONSUMER_NAME,
            Settings(
                bootstrap=config.kafka_bootstrap,
                group_id=self.group_id,
                subscribe=(topics.call_events, topics.client_events),
                topics=topics,
                batch_size=_BATCH_SIZE,
                commit_every=_COMMIT_EVERY_SECONDS,
                retry_first=_RETRY_FIRST_SECONDS,
                retry_most=_RETRY_MAX_SECONDS,
            ),
            decode=_delivery,
            write=self.write,
            kind=_kind,
            producer=producer,
            stopping=archiver.stopping,  # a stop interrupts a download
            stats=WorkerStats(),
        )
        self.stats: WorkerStats

    def write(self, batch: Batch[Delivery]) -> None:
        """In the writer thread: each event handled in order; a retry resumes where one failed."""
        for index in range(batch.done, len(batch.items)):
            delivery = batch.items[index]
            handler = HANDLERS.get(delivery.event.type)
            if handler is None:
                self.stats.ignored += 1
            else:
                handler(self, delivery.msg, delivery.event)
            batch.done = index + 1

    # -- the handlers, by event type ------------------------------------------------

    def _recording_status(self, msg: Message, event: Event) -> None:
        report = RecordingReport.from_event(event)
        if report.status == "completed":
            self._archive(msg, report)
        elif report.status in ("absent", "failed"):
            self.archiver.record_unavailable(report)

    def _archive(self, msg: Message, report: RecordingReport) -> None:
        """Archive the recording, or dead-letter it when its download failed for good."""
        if self.archiver.stopping.is_set():
            raise Interrupted()  # left uncommitted for the next run
        try:
            self.archiver.archive(report)
        except RecordingFailed as err:
            reason = str(err)
            log.error("recording dead-lettered: %s", reason, extra={"callSid": report.call_sid})
            self.archiver.record_failure(report, reason)
            self.dead_letter(msg, reason)
            self.stats.dead_lettered += 1
            return
        self.stats.archived += 1

    def _call_routed(self, msg: Message, event: Event) -> None:
        if event.callSid:
            client_id = event.data.get("clientId") or event.clientId
            self.store.record_call_routed(event.callSid, client_id, event.occurred_at)

    def _call_received(self, msg: Message, event: Event) -> None:
        caller = event.data["params"].get("From")
        if event.callSid and caller:
            caller = self._unless_erased(caller)
            self.store.record_call_received(event.callSid, caller, event.occurred_at)

    def _unless_erased(self, caller: str) -> str:
        """The caller, or their token once erased: a replayed call cannot bring the number back."""
        token = caller_token(self.config.privacy_token_secret, caller)
        return token if self.store.is_erased(token) else caller

    def _caller_erased(self, msg: Message, event: Event) -> None:
        """Remember the token; delete the caller's recordings, forget the number.

        Router also asks for the deletion over HTTP when it takes the erasure;
        this is the same deletion (a repeat finds nothing left) for when
        recordings could not be reached then.
        """
        number = event.data.get("number")
        token = caller_token(self.config.privacy_token_secret, number) if number else None
        self.store.remember_erased(token or str(event.data["token"]))
        if number and token:
            if self.on_caller_erased is not None:
                self.on_caller_erased(number, token)
            else:
                self.store.forget_caller_everywhere(number)

    def _settings_changed(self, msg: Message, event: Event) -> None:
        data = event.data
        settings = ClientSettings(
            client_id=data["clientId"],
            recording_enabled=bool(data["recordingEnabled"]),
            retention_days=data.get("retentionDays"),
            delete_from_twilio=bool(data["deleteFromTwilio"]),
            purge_after=_purge_after(data.get("purgeAfter")),
        )
        if self.store.save_client_settings(settings, event.id, event.occurred_at):
            # Recordings stored before these settings arrived (another topic, so
            # no ordering) may now need their Twilio copy deleted or may expire.
            if self.on_settings_changed is not None:
                self.on_settings_changed()


# The write step by event type; the worker skips every other type.
HANDLERS: dict[str, Handler] = {
    "recording.status-reported": RecordingsWorker._recording_status,
    "call.routed": RecordingsWorker._call_routed,
    "call.received": RecordingsWorker._call_received,
    "caller.erased": RecordingsWorker._caller_erased,
    "client.settings-changed": RecordingsWorker._settings_changed,
}


def _purge_after(value: object) -> datetime | None:
    """A deleted client's purge moment; one that cannot be read counts as none."""
    if value is None:
        return None
    try:
        return read_time(value, "purgeAfter")
    except InvalidEvent:
        return None
