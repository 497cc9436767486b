"""The time reporting decides by (quiet hours, waits, retries), injectable for tests.

`Clock` is the system's clock. `FileClock` (REPORTING_CLOCK_FILE, development
only) starts from the time written in a file and runs on from the moment the
file was written, so a test moves the service's day forward by writing the
file, and back-offs still elapse.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FileClock(Clock):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[float, datetime] | None = None

    def now(self) -> datetime:
        try:
            written = self.path.stat().st_mtime
        except FileNotFoundError:
            return datetime.now(UTC)
        if self._seen is None or self._seen[0] != written:
            text = self.path.read_text().strip()
            if not text:
                return datetime.now(UTC)
            self._seen = (written, datetime.fromisoformat(text.replace("Z", "+00:00")))
        written, start = self._seen
        return (start + timedelta(seconds=max(0.0, time.time() - written))).astimezone(UTC)


def set_file_clock(path: Path, moment: datetime) -> None:
    """Move a FileClock to `moment` (what a test calls)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(moment.isoformat())
    temporary.replace(path)
