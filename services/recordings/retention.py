"""Which stored recordings have outlived their client's retention (pure: rows and a time in).

A client's `retentionDays` (from its client.settings-changed events) counts
from the moment the recording started. A client without settings uses the
service default; no retention (None or 0) keeps recordings until someone
deletes them. A recording is expired when its start lies strictly before
`now - days`, so one stored exactly at the cut-off survives this run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Candidate:
    recording_sid: str
    client_id: str | None
    recorded_at: datetime
    retention_days: int | None  # the client's setting; None keeps recordings
    settings_known: bool = True  # False: the client's settings never arrived


def retention_for(candidate: Candidate, default_days: int) -> int | None:
    """Days to keep this recording, or None to keep it until deleted."""
    days = candidate.retention_days if candidate.settings_known else default_days
    return days if days is not None and days > 0 else None


def cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def is_expired(candidate: Candidate, now: datetime, default_days: int) -> bool:
    days = retention_for(candidate, default_days)
    return days is not None and candidate.recorded_at < cutoff(now, days)


def select_expired(
    candidates: Iterable[Candidate], now: datetime, default_days: int
) -> list[Candidate]:
    return [c for c in candidates if is_expired(c, now, default_days)]
