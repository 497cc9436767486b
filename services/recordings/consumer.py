"""The recordings worker: call and client events from Kafka into stored recordings, at least once.

One pipeline, each step a method of the same name:

    poll -> decode (and validate) -> handle -> mark -> commit

Most events are handled in the loop itself with one small database write:
call.routed (which client a call belongs to), call.received (the caller's
number, for erasure), client.settings-changed (retention and whether to
delete Twilio's copy) and recording statuses other than `completed`. A
`completed` recording is archived (archiving.py) in a helper thread while
the partitions are paused and the loop keeps polling, so the group never
mistakes a long download for a dead consumer. An offset is marked only once
its event's work is durable, and marked offsets are committed about once a
second and whenever a recording has been stored. A crash therefore re-reads
at most the work in flight, and the archive step is idempotent on
RecordingSid.

A download that fails for good is dead-lettered with the reason (and
announced as recording.failed); an event that does not decode is
dead-lettered too; past a ratio of invalid messages the worker stops loudly.
Infrastructure trouble (database, storage, Kafka) pauses the partitions and
retries the same message with backoff, never skipping it.

The machinery is switchboard.consumer's (reading polls, dead-lettering with
the invalid-ratio guard, offsets committed after the work, pausing,
backoff, start/stop and health); the handle step is the worker's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from services.recordings.archiving import Archiver, Interrupted, RecordingFailed, RecordingReport
from services.recordings.config import Config
from services.recordings.metadata import ClientSettings
from services.recordings.store import Store
from switchboard import consumer as pipeline
from switchboard import kafka
from switchboard.events import Event, InvalidEvent, decode, read_time
from switchboard.privacy import caller_token

log = logging.getLogger(__name__)

CONSUMER_NAME = "recordings"
HANDLED_TYPES = (
    "recording.status-reported",
    "call.routed",
    "call.received",
    "client.settings-changed",
    "caller.erased",
)
_POLL_SECONDS = 0.2
_COMMIT_EVERY_SECONDS = 1.0
_RETRY_FIRST_SECONDS = 0.5
_RETRY_MAX_SECONDS = 15.0
_REVOKE_WAIT_SECONDS = 30.0


@dataclass
class WorkerStats:
    messages: int = 0
    invalid: int = 0
    ignored: int = 0
    archived: int = 0
    dead_lettered: int = 0
    commits: int = 0
    retries: int = 0


@dataclass
class _InFlight:
    msg: Message
    report: RecordingReport
    future: Future[None]


class RecordingsWorker(pipeline.ConsumerThread):
    """Runs the pipeline in a background thread (`start`) or the caller's (`run`).

    Built from switchboard.consumer's parts; its own are the handle step
    (`_handle`) and the archive a `completed` recording takes.
    """

    thread_name = "recordings-worker"

    def __init__(
        self,
        config: Config,
        store: Store,
        archiver: Archiver,
        producer: kafka.EventProducer,
        group_id: str | None = None,
    ) -> None:
        super().__init__(archiver.stopping)
        self.config = config
        self.store = store
        self.archiver = archiver
        self.producer = producer
        self.group_id = group_id or config.group_id
        self.stats = WorkerStats()
        self.on_settings_changed: Callable[[], None] | None = None
        # Deletes an erased caller's recordings (number, token); set by the app.
        self.on_caller_erased: Callable[[str, str], None] | None = None
        self._decode_step = pipeline.Decoder(
            decode,
            lambda: self.producer,
            config.topics,
            CONSUMER_NAME,
            pipeline.InvalidRatioGuard(),
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recordings-archive")
        self._inflight: _InFlight | None = None
        self._retry_msg: tuple[Message, Event] | None = None
        self._retry_at = 0.0
        self._backoff = pipeline.Backoff(_RETRY_FIRST_SECONDS, _RETRY_MAX_SECONDS)
        self._pauser = pipeline.Pauser()
        self._offsets = pipeline.Offsets(_COMMIT_EVERY_SECONDS)
        # Events consumed per type and lag per partition, for /metrics.
        self.progress = pipeline.Progress(CONSUMER_NAME)

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        self._request_stop(timeout)

    def run(self) -> None:
        consumer = Consumer(
            kafka.consumer_config(
                self.config.kafka_bootstrap, self.group_id, **{"client.id": CONSUMER_NAME}
            )
        )
        topics = [self.config.topics.call_events, self.config.topics.client_events]
        consumer.subscribe(
            topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("recordings worker started on %s", ", ".join(topics))
        try:
            while not self._stopping.is_set():
                self._step(consumer)
            self._drain(consumer)
        except BaseException as err:
            self.error = err
            log.critical("recordings worker stopped: %s", err, exc_info=True)
            raise
        finally:
            consumer.close()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self.producer.flush(5)
            log.info("recordings worker stopped")

    # -- the pipeline ------------------------------------------------------------------

    def _step(self, consumer: Consumer) -> None:
        self.progress.refresh(consumer, self._offsets.committed, self._pauser.paused)
        if self._inflight is not None:
            self._poll_paused(consumer)
            if self._inflight is not None and self._inflight.future.done():
                self._complete(consumer)
            return
        if self._retry_msg is not None:
            if time.monotonic() < self._retry_at:
                self._poll_paused(consumer)
                return
            held, retried = self._retry_msg
            self._retry_msg = None
            self._handle(consumer, held, retried)
            return
        self._maybe_commit(consumer)
        msg = self._poll(consumer)
        if msg is None:
            return
        event = self._decode(msg)
        if event is None or event.type not in HANDLED_TYPES:
            if event is not None:
                self.stats.ignored += 1
                self.progress.consumed({event.type: 1})
            self._mark(msg)
            return
        self._handle(consumer, msg, event)

    def _poll(self, consumer: Consumer) -> Message | None:
        msg = consumer.poll(_POLL_SECONDS)
        if msg is None:
            return None
        for polled in pipeline.messages([msg]):
            self.stats.messages += 1
            return polled
        return None

    def _poll_paused(self, consumer: Consumer) -> None:
        """Poll while paused: serves rebalances and keeps the membership alive."""
        msg = consumer.poll(_POLL_SECONDS)
        if msg is None or msg.error() is not None:
            return
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is not None and partition is not None and offset is not None:
            # A partition assigned after the pause delivered; put it back to read later.
            try:
                consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as err:
                log.warning("could not rewind %s[%d]: %s", topic, partition, err)
            consumer.pause([TopicPartition(topic, partition)])

    def _decode(self, msg: Message) -> Event | None:
        """The message's event, or None after sending it to the dead-letter topic."""
        event = self._decode_step(msg)
        if event is None:
            self.stats.invalid += 1
        return event

    def _handle(self, consumer: Consumer, msg: Message, event: Event) -> None:
        try:
            if event.type == "recording.status-reported":
                report = RecordingReport.from_event(event)
                if report.status == "completed":
                    self._start_archive(consumer, msg, report)
                    return
                if report.status in ("absent", "failed"):
                    self.archiver.record_unavailable(report)
            elif event.type == "call.routed":
                if event.callSid:
                    client_id = event.data.get("clientId") or event.clientId
                    self.store.record_call_routed(event.callSid, client_id, event.occurred_at)
            elif event.type == "call.received":
                caller = event.data["params"].get("From")
                if event.callSid and caller:
                    caller = self._unless_erased(caller)
                    self.store.record_call_received(event.callSid, caller, event.occurred_at)
            elif event.type == "caller.erased":
                self._forget_caller(event)
            elif event.type == "client.settings-changed":
                self._save_settings(event)
        except Exception as err:  # infrastructure trouble: retry this message later
            self._schedule_retry(consumer, msg, event, err)
            return
        self._mark(msg)
        self.progress.consumed({event.type: 1})
        self._succeeded(consumer)

    def _unless_erased(self, caller: str) -> str:
        """The caller, or their token once erased: a replayed call cannot bring the number back."""
        token = caller_token(self.config.privacy_token_secret, caller)
        return token if self.store.is_erased(token) else caller

    def _forget_caller(self, event: Event) -> None:
        """caller.erased: remember the token; delete the caller's recordings, forget the number.

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

    def _succeeded(self, consumer: Consumer) -> None:
        self._backoff.succeeded()
        self._pauser.hold(consumer, False)

    def _pause(self, consumer: Consumer) -> None:
        # Paused again even when paused: a partition assigned since starts unpaused.
        self._pauser.forget()
        self._pauser.hold(consumer, True)

    def _save_settings(self, event: Event) -> None:
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

    def _start_archive(self, consumer: Consumer, msg: Message, report: RecordingReport) -> None:
        self._pause(consumer)
        future = self._executor.submit(self._archive, msg, report)
        self._inflight = _InFlight(msg, report, future)

    def _archive(self, msg: Message, report: RecordingReport) -> None:
        """In the helper thread: archive, or dead-letter a recording that failed for good."""
        try:
            self.archiver.archive(report)
        except RecordingFailed as err:
            reason = str(err)
            log.error("recording dead-lettered: %s", reason, extra={"callSid": report.call_sid})
            self.archiver.record_failure(report, reason)
            self._dead_letter(msg, reason)
            self.stats.dead_lettered += 1
            return
        self.stats.archived += 1

    def _complete(self, consumer: Consumer) -> None:
        inflight = self._inflight
        assert inflight is not None
        self._inflight = None
        error = inflight.future.exception()
        if error is None:
            self._mark(inflight.msg)
            self.progress.consumed({"recording.status-reported": 1})  # what started the archive
            self._commit(consumer)
            self._succeeded(consumer)
            return
        if isinstance(error, Interrupted):
            return  # stopping: leave it uncommitted for the next run
        event = decode(inflight.msg.value())
        self._schedule_retry(consumer, inflight.msg, event, error)

    def _schedule_retry(
        self, consumer: Consumer, msg: Message, event: Event, err: BaseException
    ) -> None:
        self.stats.retries += 1
        delay = self._backoff.failed()
        log.error(
            "handling %s failed, partitions paused, retry in %.1fs: %s",
            event.type,
            delay,
            err,
            extra={"callSid": event.callSid},
        )
        self._pause(consumer)
        self._retry_msg = (msg, event)
        self._retry_at = time.monotonic() + delay

    def _dead_letter(self, msg: Message, reason: str) -> None:
        self._decode_step.dead_letter(msg, reason)

    # -- offsets -------------------------------------------------------------------------

    def _mark(self, msg: Message) -> None:
        """The message's work is durable: its offset may be committed."""
        self._offsets.mark(msg)

    def _maybe_commit(self, consumer: Consumer) -> None:
        if self._offsets.commit_due(time.monotonic()):
            self._commit(consumer)

    def _commit(self, consumer: Consumer) -> None:
        """Commit the marked offsets: every event before them has been handled durably."""
        before = self._offsets.commits
        self._offsets.commit(consumer)
        self.stats.commits += self._offsets.commits - before

    def _drain(self, consumer: Consumer) -> None:
        """On stop: give a running archive a moment (it aborts soon), commit what is done."""
        if self._inflight is not None:
            try:
                self._inflight.future.result(timeout=10)
                self._mark(self._inflight.msg)
            except Exception:  # interrupted or failed: it will be read again
                pass
            self._inflight = None
        self._commit(consumer)

    # -- rebalances ---------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", [(p.topic, p.partition) for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand over cleanly: let a running archive finish (it is idempotent, so
        # abandoning it is safe too), commit what is durable, forget the rest.
        if self._inflight is not None and self.error is None:
            try:
                self._inflight.future.result(timeout=_REVOKE_WAIT_SECONDS)
                self._mark(self._inflight.msg)
            except Exception as err:
                log.warning("archive abandoned on revoke, it will be read again: %s", err)
        self._inflight = None
        if self.error is None:
            self._commit(consumer)
        self._reset()

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost: %s", [p.partition for p in partitions])
        self._inflight = None
        self._reset()

    def _reset(self) -> None:
        self.progress.forget()
        self._pauser.forget()
        self._offsets.forget()
        self._retry_msg = None
        self._backoff.succeeded()


def _purge_after(value: object) -> datetime | None:
    """A deleted client's purge moment; one that cannot be read counts as none."""
    if value is None:
        return None
    try:
        return read_time(value, "purgeAfter")
    except InvalidEvent:
        return None
