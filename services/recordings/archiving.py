"""Archiving one recording: download from Twilio, verify, store, record, tidy up.

The order is what makes it safe to crash anywhere and run again:

    download into a part -> verify the part (non-empty, Twilio's size, the
    stored bytes hash like the downloaded ones) -> promote the part to its
    final key -> insert the metadata (ON CONFLICT DO NOTHING) -> remove any
    leftover parts -> delete Twilio's copy if the client wants it ->
    announce recording.stored

A crash before the insert leaves at most a part and an unreferenced final
object at the same deterministic key; running again downloads anew,
overwrites that object with the same bytes and inserts once. A crash after
the insert finds the row on the next run and only repeats the tail, which is
idempotent. Downloads are retried with exponential backoff on 5xx, 429,
timeouts and broken transfers, a bounded number of times; what still fails is
`RecordingFailed`, which the worker dead-letters.

Media comes only from the configured Twilio API base: an event whose
RecordingUrl or AccountSid names anything else is refused before any request,
audited, and fails like a download that cannot succeed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from services.recordings import announcements
from services.recordings.announcements import Announcer
from services.recordings.config import Config
from services.recordings.metadata import (
    ABSENT,
    CALL,
    DELETED,
    FAILED,
    STORED,
    VOICEMAIL,
    Recording,
    StoredCopy,
)
from services.recordings.storage import Storage, StorageError, media_key, new_part_key
from services.recordings.store import Store
from services.recordings.twilio_rest import DownloadError, TwilioRecordings, TwilioUnavailable
from switchboard.events import Event

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class RecordingFailed(Exception):
    """The recording could not be downloaded and stored; the reason goes to the DLQ."""


class Interrupted(Exception):
    """The worker is stopping; the message is left uncommitted for the next run."""


@dataclass(frozen=True)
class RecordingReport:
    """A recording status callback, as the worker needs it."""

    recording_sid: str
    call_sid: str
    status: str
    duration_sec: int | None
    channels: int
    recording_url: str | None
    account_sid: str | None
    error_code: str | None
    recorded_at: datetime
    client_id: str | None
    kind: str = CALL

    @classmethod
    def from_event(cls, event: Event) -> RecordingReport:
        params: dict[str, str] = event.data["params"]
        started = params.get("RecordingStartTime")
        recorded_at = event.occurred_at
        if started:
            try:
                recorded_at = parsedate_to_datetime(started)
            except (TypeError, ValueError):
                pass
        error = params.get("ErrorCode")
        return cls(
            recording_sid=params["RecordingSid"],
            call_sid=event.callSid or params["CallSid"],
            status=params["RecordingStatus"],
            duration_sec=_int(params.get("RecordingDuration")),
            channels=2 if params.get("RecordingChannels") == "2" else 1,
            recording_url=params.get("RecordingUrl") or None,
            account_sid=params.get("AccountSid") or None,
            error_code=error if error and error != "0" else None,
            recorded_at=recorded_at,
            client_id=event.clientId,
            kind=VOICEMAIL if params.get("RecordingSource") == "RecordVerb" else CALL,
        )


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None  # type: ignore[arg-type]
    except ValueError:
        return None


def backoff_seconds(base: float, attempt: int) -> float:
    """Wait before retry number `attempt` (1-based): base, 2*base, 4*base ... capped."""
    return float(min(base * (2 ** (attempt - 1)), MAX_BACKOFF_SECONDS))


class Archiver:
    """Turns recording reports into stored copies, rows and events."""

    def __init__(
        self,
        config: Config,
        store: Store,
        storage: Storage,
        twilio: TwilioRecordings,
        announcer: Announcer,
        stopping: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.storage = storage
        self.twilio = twilio
        self.announcer = announcer
        self.stopping = stopping or threading.Event()

    # -- statuses that need no download -----------------------------------------

    def record_unavailable(self, report: RecordingReport) -> None:
        """Twilio reported the recording absent or failed: record it, never retry it."""
        client_id = self._client_of(report)
        status = ABSENT if report.status == ABSENT else FAILED
        reason = f"Twilio reported the recording {report.status}"
        if report.error_code:
            reason += f" (error {report.error_code})"
        self.store.insert_not_stored(
            report.recording_sid,
            report.call_sid,
            client_id,
            status,
            report.status,
            reason,
            report.error_code,
            report.duration_sec,
            report.channels,
            report.recorded_at,
            report.kind,
        )
        self.announcer.announce(
            announcements.failed_event(
                report.recording_sid,
                report.call_sid,
                client_id,
                status,
                report.status,
                reason,
                report.error_code,
            )
        )

    def record_failure(self, report: RecordingReport, reason: str) -> None:
        """Our download failed for good: a failed row (upgradable by a later retry), an event."""
        client_id = self._client_of(report)
        self.store.insert_not_stored(
            report.recording_sid,
            report.call_sid,
            client_id,
            FAILED,
            report.status,
            reason,
            report.error_code,
            report.duration_sec,
            report.channels,
            report.recorded_at,
            report.kind,
        )
        self.announcer.announce(
            announcements.failed_event(
                report.recording_sid,
                report.call_sid,
                client_id,
                FAILED,
                report.status,
                reason,
                report.error_code,
            )
        )

    # -- completed recordings --------------------------------------------------------

    def archive(self, report: RecordingReport) -> Recording | None:
        """Store a completed recording once; None if it is a tombstone or Twilio's failure.

        Raises RecordingFailed when the download failed for good, StorageError or
        a database error for infrastructure trouble (the caller retries later),
        Interrupted when the worker stops.
        """
        existing = self.store.recording(report.recording_sid)
        if existing is not None and existing.status in (STORED, DELETED, ABSENT):
            if existing.stored:
                self._finish(existing)
            return None
        if existing is not None and existing.twilio_status != "completed":
            return None  # Twilio said failed; nothing to download
        client_id = self._client_of(report)
        self._refuse_foreign(report, client_id)
        copy = self._download_with_retries(report, client_id)
        if self.store.insert_stored(copy):
            log.info(
                "recording stored: %s (%d bytes)",
                copy.storage_key,
                copy.bytes,
                extra={"callSid": copy.call_sid, "clientId": client_id},
            )
        self.storage.discard_parts(report.recording_sid)
        stored = self.store.recording(report.recording_sid)
        if stored is None or not stored.stored:
            return None
        self._finish(stored)
        return self.store.recording(report.recording_sid)

    def _refuse_foreign(self, report: RecordingReport, client_id: str | None) -> None:
        """RecordingFailed, audited, for an event that does not name our account's recording."""
        reason = self.twilio.refusal(report.recording_sid, report.account_sid, report.recording_url)
        if reason is None:
            return
        log.error(
            "recording event refused, nothing downloaded: %s",
            reason,
            extra={"callSid": report.call_sid},
        )
        self.store.audit(
            "recordings-worker",
            "recording.refused",
            report.recording_sid,
            client_id,
            {"reason": reason, "callSid": report.call_sid, "recordingUrl": report.recording_url},
        )
        raise RecordingFailed(f"refused {report.recording_sid}: {reason}")

    def _client_of(self, report: RecordingReport) -> str | None:
        return self.store.call_client(report.call_sid) or report.client_id

    def _download_with_retries(self, report: RecordingReport, client_id: str | None) -> StoredCopy:
        attempts = self.config.download_attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._download_once(report, client_id)
            except DownloadError as err:
                if not err.retryable or attempt == attempts:
                    raise RecordingFailed(
                        f"download of {report.recording_sid} failed after {attempt} "
                        f"attempt(s): {err}"
                    ) from err
                delay = backoff_seconds(self.config.download_backoff_seconds, attempt)
                log.warning(
                    "download attempt %d of %s failed, retry in %.1fs: %s",
                    attempt,
                    report.recording_sid,
                    delay,
                    err,
                    extra={"callSid": report.call_sid},
                )
                if self.stopping.wait(delay):
                    raise Interrupted() from err
        raise AssertionError("unreachable")

    def _download_once(self, report: RecordingReport, client_id: str | None) -> StoredCopy:
        fmt = self.config.media_format
        url = self.twilio.media_url(report.recording_sid, fmt, report.channels)
        media = self.twilio.open_media(url)
        digest = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for chunk in media.chunks:
                if self.stopping.is_set():
                    raise Interrupted()
                digest.update(chunk)
                yield chunk

        part = new_part_key(report.recording_sid)
        try:
            size = self.storage.write_part(part, hashed())
            if size == 0:
                raise DownloadError("Twilio served an empty file", retryable=True)
            if media.expected_bytes is not None and size != media.expected_bytes:
                raise DownloadError(
                    f"got {size} bytes, Twilio announced {media.expected_bytes}", retryable=True
                )
            sha256 = digest.hexdigest()
            if self.storage.size(part) != size or self.storage.sha256(part) != sha256:
                raise DownloadError("the stored copy does not match the download", retryable=True)
            key = media_key(report.recording_sid, report.call_sid, report.recorded_at, fmt)
            self.storage.promote(part, key)
        except BaseException:
            try:
                self.storage.delete(part)
            except StorageError:
                pass
            raise
        return StoredCopy(
            recording_sid=report.recording_sid,
            call_sid=report.call_sid,
            client_id=client_id,
            twilio_status=report.status,
            duration_sec=report.duration_sec,
            channels=report.channels,
            format=fmt,
            bytes=size,
            sha256=sha256,
            storage_key=key,
            recorded_at=report.recorded_at,
            kind=report.kind,
        )

    def _finish(self, recording: Recording) -> None:
        """Delete Twilio's copy if wanted, then announce; both safe to repeat."""
        twilio_deleted = recording.twilio_deleted_at is not None
        if not twilio_deleted and self.wants_twilio_copy_deleted(recording.client_id):
            try:
                twilio_deleted = self.twilio.delete(recording.recording_sid)
            except TwilioUnavailable as err:
                # The periodic job tries again; the stored copy is safe either way.
                log.warning("Twilio copy of %s not deleted yet: %s", recording.recording_sid, err)
            if twilio_deleted:
                self.store.mark_twilio_deleted(recording.recording_sid)
        assert recording.channels is not None and recording.bytes is not None
        assert recording.sha256 is not None and recording.format is not None
        self.announcer.announce(
            announcements.stored_event(
                recording.recording_sid,
                recording.call_sid,
                recording.client_id,
                recording.duration_sec,
                recording.channels,
                recording.bytes,
                recording.sha256,
                recording.format,
                recording.recorded_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                twilio_deleted,
            )
        )

    def wants_twilio_copy_deleted(self, client_id: str | None) -> bool:
        settings = self.store.client_settings(client_id) if client_id else None
        if settings is None:
            return self.config.default_delete_from_twilio
        return settings.delete_from_twilio
