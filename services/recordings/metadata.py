"""What the service knows about recordings, calls and clients (dataclasses, no I/O).

`Recording` is one row per RecordingSid: stored (with its verified size and
checksum and where it lies), absent or failed (with the reason), or deleted
(a tombstone kept for the audit). `ClientSettings` is the part of a client's
settings this service acts on, learned from client.settings-changed events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

STORED = "stored"
ABSENT = "absent"
FAILED = "failed"
DELETED = "deleted"
STATUSES = (STORED, ABSENT, FAILED, DELETED)

# What was recorded: the call, or a voicemail the caller left (<Record>).
CALL = "call"
VOICEMAIL = "voicemail"
KINDS = (CALL, VOICEMAIL)

CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
UNKNOWN_CONTENT_TYPE = "application/octet-stream"

# Entries of the audit log one request may ask for (GET /api/recordings/audit).
AUDIT_DEFAULT_LIMIT = 100
AUDIT_MAX_LIMIT = 1000


@dataclass(frozen=True)
class ClientSettings:
    client_id: str
    recording_enabled: bool
    retention_days: int | None
    delete_from_twilio: bool
    # Set once the client is deleted: its recordings are purged from then on.
    purge_after: datetime | None = None


@dataclass(frozen=True)
class StoredCopy:
    """A verified copy in object storage, ready to be recorded."""

    recording_sid: str
    call_sid: str
    client_id: str | None
    twilio_status: str
    duration_sec: int | None
    channels: int
    format: str
    bytes: int
    sha256: str
    storage_key: str
    recorded_at: datetime
    kind: str = CALL


@dataclass(frozen=True)
class Recording:
    recording_sid: str
    call_sid: str
    client_id: str | None
    status: str
    twilio_status: str
    duration_sec: int | None
    channels: int | None
    format: str | None
    bytes: int | None
    sha256: str | None
    storage_key: str | None
    failure_reason: str | None
    error_code: str | None
    recorded_at: datetime
    created_at: datetime
    twilio_deleted_at: datetime | None
    deleted_at: datetime | None
    deleted_by: str | None
    deletion_reason: str | None
    kind: str = CALL

    @property
    def stored(self) -> bool:
        return self.status == STORED

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.format or "", UNKNOWN_CONTENT_TYPE)

    def filename(self) -> str:
        return f"{self.call_sid}-{self.recording_sid}.{self.format or 'bin'}"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    who: str
    action: str
    target: str
    client_id: str | None
    detail: dict[str, Any]
