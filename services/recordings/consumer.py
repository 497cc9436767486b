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
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from services.recordings.archiving import Archiver, Interrupted, RecordingFailed, RecordingReport
from services.recordings.config import Config
from services.recordings.metadata import ClientSettings
from services.recordings.store import Store
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


class TooManyInvalidMessages(RuntimeError):
    """More of the recent messages were invalid than the configured ratio allows."""


@dataclass
class WorkerStats:
    messages: int = 0
    invalid: int = 0
    ignored: int = 0
    archived: int = 0
    dead_lettered: int = 0
    commits: int = 0
    retries: int = 0


class InvalidRatioGuard:
    """Stops the worker when too many of the last `window` messages were invalid."""

    def __init__(self, window: int = 100, max_ratio: float = 0.5) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._max_ratio = max_ratio

    def record(self, invalid: bool) -> None:
        self._recent.append(invalid)
        if len(self._recent) < (self._recent.maxlen or 0):
            return
        if sum(self._recent) / len(self._recent) > self._max_ratio:
            raise TooManyInvalidMessages(
                f"{sum(self._recent)} of the last {len(self._recent)} messages were invalid; "
                "stopping instead of dead-lettering the topic"
            )


@dataclass
class _InFlight:
    msg: Message
    report: RecordingReport
    future: Future[None]


class RecordingsWorker:
    """Runs the pipeline in a background thread (`start`) or the caller's (`run`)."""

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
        self.stats = WorkerStats()
        self.on_settings_changed: Callable[[], None] | None = None
        # Deletes an erased caller's recordings (number, token); set by the app.
        self.on_caller_erased: Callable[[str, str], None] | None = None
        self.error: BaseException | None = None
        self._stopping = archiver.stopping
        self._guard = InvalidRatioGuard()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recordings-archive")
        self._thread: threading.Thread | None = None
        self._inflight: _InFlight | None = None
        self._retry_msg: tuple[Message, Event] | None = None
        self._retry_at = 0.0
        self._retry_delay = _RETRY_FIRST_SECONDS
        self._paused = False
        self._marked: dict[tuple[str, int], int] = {}
        self._last_commit = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run_in_thread, name="recordings-worker", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.error is None

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException:
            pass  # run() recorded and logged it

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
            self._mark(msg)
            return
        self._handle(consumer, msg, event)

    def _poll(self, consumer: Consumer) -> Message | None:
        msg = consumer.poll(_POLL_SECONDS)
        if msg is None:
            return None
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.fatal():
                raise KafkaException(error)
            log.warning("kafka reported: %s", error)
            return None
        self.stats.messages += 1
        return msg

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
        try:
            event = decode(msg.value())
        except InvalidEvent as err:
            self.stats.invalid += 1
            self._dead_letter(msg, str(err))
            log.warning("invalid message dead-lettered: %s", err, extra={"topic": msg.topic()})
            self._guard.record(True)
            return None
        self._guard.record(False)
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
        self._retry_delay = _RETRY_FIRST_SECONDS
        if self._paused:
            consumer.resume(consumer.assignment())
            self._paused = False

    def _pause(self, consumer: Consumer) -> None:
        consumer.pause(consumer.assignment())
        self._paused = True

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
        log.error(
            "handling %s failed, partitions paused, retry in %.1fs: %s",
            event.type,
            self._retry_delay,
            err,
            extra={"callSid": event.callSid},
        )
        self._pause(consumer)
        self._retry_msg = (msg, event)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX_SECONDS)

    def _dead_letter(self, msg: Message, reason: str) -> None:
        kafka.dead_letter(self.producer, self.config.topics, msg, reason, CONSUMER_NAME)

    # -- offsets -------------------------------------------------------------------------

    def _mark(self, msg: Message) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or offset is None:
            raise ValueError("a consumed message without topic, partition or offset")
        self._marked[(topic, partition)] = offset + 1

    def _maybe_commit(self, consumer: Consumer) -> None:
        if self._marked and time.monotonic() - self._last_commit >= _COMMIT_EVERY_SECONDS:
            self._commit(consumer)

    def _commit(self, consumer: Consumer) -> None:
        """Commit the marked offsets: every event before them has been handled durably."""
        self._last_commit = time.monotonic()
        if not self._marked:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._marked.items())]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:
            log.warning("offset commit failed, those events will be read again: %s", err)
            return
        self._marked.clear()
        self.stats.commits += 1

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
        self._paused = False
        self._marked.clear()
        self._retry_msg = None
        self._retry_delay = _RETRY_FIRST_SECONDS


def _purge_after(value: object) -> datetime | None:
    """A deleted client's purge moment; one that cannot be read counts as none."""
    if value is None:
        return None
    try:
        return read_time(value, "purgeAfter")
    except InvalidEvent:
        return None
