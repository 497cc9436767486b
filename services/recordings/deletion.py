"""Deleting recordings: one on request, a caller's on erasure, the expired ones by retention.

Every deletion takes the same steps: the stored object goes first, then
Twilio's copy if it is still there, then the row becomes a tombstone (status
`deleted`, who, why, when) that stays for the audit, an audit row is written
and recording.deleted is announced. Deleting a missing object is not an
error, so a deletion interrupted anywhere is simply repeated. A Twilio copy
that could not be deleted right then is retried by the periodic job.

`run_housekeeping()` is one pass of that job (retention, the purge of deleted
clients whose grace period has passed, then pending Twilio deletions, then
old parts of killed downloads); `HousekeepingJob` runs it on
an interval in a thread. Tests call the function directly.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.recordings import announcements, retention
from services.recordings.announcements import Announcer
from services.recordings.config import Config
from services.recordings.metadata import Recording
from services.recordings.storage import Storage, StorageError
from services.recordings.store import Store
from services.recordings.twilio_rest import TwilioRecordings, TwilioUnavailable

log = logging.getLogger(__name__)

RETENTION_ACTOR = "system:retention"
PURGE_ACTOR = "system:purge"
# A part older than this belongs to a download that died; a live one is minutes old at most.
STALE_PART_SECONDS = 6 * 3600


@dataclass(frozen=True)
class HousekeepingResult:
    expired_deleted: list[str]
    twilio_copies_deleted: list[str]
    parts_removed: int
    clients_purged: list[str] = field(default_factory=list)


class Deleter:
    """Deletes stored recordings: storage, Twilio's copy, tombstone, audit, event."""

    def __init__(
        self, store: Store, storage: Storage, twilio: TwilioRecordings, announcer: Announcer
    ) -> None:
        self.store = store
        self.storage = storage
        self.twilio = twilio
        self.announcer = announcer

    def delete(self, recording: Recording, by: str, reason: str) -> Recording:
        """Delete a stored recording; a tombstone is returned unchanged."""
        if not recording.stored:
            return recording
        if recording.storage_key:
            self.storage.delete(recording.storage_key)
        twilio_deleted = recording.twilio_deleted_at is not None
        if not twilio_deleted:
            twilio_deleted = self.delete_twilio_copy(recording.recording_sid)
        tombstone = self.store.mark_deleted(recording.recording_sid, by, reason)
        if tombstone is None:  # someone else deleted it meanwhile
            return self.store.recording(recording.recording_sid) or recording
        self.store.audit(
            by,
            "recording.deleted",
            recording.recording_sid,
            recording.client_id,
            {"reason": reason, "callSid": recording.call_sid, "twilioCopyDeleted": twilio_deleted},
        )
        self.announcer.announce(
            announcements.deleted_event(
                recording.recording_sid,
                recording.call_sid,
                recording.client_id,
                reason,
                by,
                twilio_deleted,
            )
        )
        log.info(
            "recording deleted (%s): %s",
            reason,
            recording.recording_sid,
            extra={"callSid": recording.call_sid, "clientId": recording.client_id},
        )
        return self.store.recording(recording.recording_sid) or tombstone

    def delete_twilio_copy(self, recording_sid: str) -> bool:
        try:
            gone = self.twilio.delete(recording_sid)
        except TwilioUnavailable as err:
            log.warning("Twilio copy of %s not deleted yet: %s", recording_sid, err)
            return False
        if gone:
            self.store.mark_twilio_deleted(recording_sid)
        return gone

    def erase_caller(self, client_id: str, phone_number: str, by: str) -> list[Recording]:
        """GDPR erasure: delete the caller's recordings of this client, forget the number."""
        deleted = [
            self.delete(recording, by, "erasure")
            for recording in self.store.caller_recordings(client_id, phone_number)
        ]
        calls = self.store.forget_caller(client_id, phone_number)
        # The audit names the erasure, never the erased number.
        self.store.audit(
            by,
            "caller.erased",
            f"client:{client_id}",
            client_id,
            {"recordings": [r.recording_sid for r in deleted], "calls": calls},
        )
        return deleted


def erase_caller_everywhere(
    deleter: Deleter, phone_number: str, by: str, target: str
) -> tuple[list[Recording], int]:
    """Router's erasure of a caller: their recordings of every client; the number forgotten.

    `target` names the erasure in the audit (router's token), never the number.
    """
    store = deleter.store
    deleted = [
        deleter.delete(recording, by, "erasure")
        for recording in store.caller_recordings_everywhere(phone_number)
        if recording.stored
    ]
    calls = store.forget_caller_everywhere(phone_number)
    store.audit(
        by,
        "caller.erased",
        target,
        None,
        {"recordings": [r.recording_sid for r in deleted], "calls": calls},
    )
    return deleted, calls


def delete_expired(
    store: Store, deleter: Deleter, now: datetime, default_retention_days: int
) -> list[str]:
    """Delete every stored recording past its client's retention; the deleted sids."""
    expired = retention.select_expired(store.retention_candidates(), now, default_retention_days)
    deleted: list[str] = []
    for candidate in expired:
        recording = store.recording(candidate.recording_sid)
        if recording is None or not recording.stored:
            continue
        try:
            deleter.delete(recording, RETENTION_ACTOR, "retention")
        except StorageError as err:
            log.error("retention could not delete %s: %s", candidate.recording_sid, err)
            continue
        deleted.append(candidate.recording_sid)
    return deleted


def purge_deleted_clients(store: Store, deleter: Deleter, now: datetime) -> list[str]:
    """Every recording of each deleted client whose purge is due; the clients purged."""
    purged = []
    for client_id in store.purges_due(now):
        deleted = [
            deleter.delete(recording, PURGE_ACTOR, "purge")
            for recording in store.client_recordings(client_id)
        ]
        calls = store.forget_client_calls(client_id)
        store.audit(
            PURGE_ACTOR,
            "client.purged",
            f"client:{client_id}",
            client_id,
            {"recordings": [r.recording_sid for r in deleted], "calls": calls},
        )
        purged.append(client_id)
    return purged


def delete_pending_twilio_copies(store: Store, deleter: Deleter, default_delete: bool) -> list[str]:
    done: list[str] = []
    for recording in store.twilio_copies_to_delete(default_delete):
        if deleter.delete_twilio_copy(recording.recording_sid):
            done.append(recording.recording_sid)
    return done


def run_housekeeping(
    config: Config, store: Store, storage: Storage, deleter: Deleter, now: datetime | None = None
) -> HousekeepingResult:
    """One pass: retention, pending Twilio deletions, parts of downloads that died."""
    moment = now or datetime.now(UTC)
    expired = delete_expired(store, deleter, moment, config.default_retention_days)
    purged = purge_deleted_clients(store, deleter, moment)
    copies = delete_pending_twilio_copies(store, deleter, config.default_delete_from_twilio)
    parts = storage.sweep_parts(STALE_PART_SECONDS)
    if expired or copies or parts or purged:
        log.info(
            "housekeeping: %d expired deleted, %d Twilio copies deleted, %d parts removed, "
            "%d deleted clients purged",
            len(expired),
            len(copies),
            parts,
            len(purged),
        )
    return HousekeepingResult(expired, copies, parts, purged)


class HousekeepingJob:
    """Runs `run_housekeeping` every `interval` seconds in a daemon thread."""

    def __init__(self, config: Config, store: Store, storage: Storage, deleter: Deleter) -> None:
        self.config = config
        self.store = store
        self.storage = storage
        self.deleter = deleter
        self.runs = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="recordings-housekeeping", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Run a pass soon (a client's settings changed), not only on the interval."""
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.config.retention_interval_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                run_housekeeping(self.config, self.store, self.storage, self.deleter)
            except Exception:  # one bad pass must not end the job
                log.exception("housekeeping pass failed; trying again next interval")
            self.runs += 1
