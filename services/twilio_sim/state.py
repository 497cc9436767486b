"""The simulated Twilio account, in memory: numbers, calls, recordings, call logs.

One process owns it (the simulator runs one gunicorn worker with threads).
Every read and write takes the lock; reads hand out copies, so a request
thread never sees a record half-updated by a call playing in the background.
`Play` is the simulator's own log of one call it played: what it requested,
what came back, and when, for tests and demos to inspect.
"""

from __future__ import annotations

import copy
import secrets
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class SimClock:
    """The simulated "now": real time, or real time shifted to a moment a test set.

    Set, it keeps ticking from the moment given, so a call placed later still
    starts later; `set(None)` goes back to real time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset: timedelta | None = None

    def now(self) -> datetime:
        real = datetime.now(UTC)
        with self._lock:
            moment = real if self._offset is None else real + self._offset
        return moment.replace(microsecond=0)

    def set(self, moment: datetime | None) -> None:
        with self._lock:
            self._offset = None if moment is None else moment - datetime.now(UTC)

    @property
    def is_set(self) -> bool:
        with self._lock:
            return self._offset is not None


class NumberTaken(Exception):
    """The account already owns this phone number."""


@dataclass
class PhoneNumber:
    sid: str
    phone_number: str
    friendly_name: str
    created_at: datetime
    updated_at: datetime
    voice_url: str = ""
    voice_method: str = "POST"
    voice_fallback_url: str = ""
    voice_fallback_method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"


@dataclass
class Call:
    sid: str
    from_: str
    to: str
    direction: str
    status: str
    created_at: datetime
    updated_at: datetime
    parent_call_sid: str | None = None
    phone_number_sid: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None


@dataclass
class Recording:
    sid: str
    call_sid: str
    duration: int
    channels: int
    source: str
    started_at: datetime
    created_at: datetime
    status: str = "completed"


@dataclass
class Play:
    call_sid: str
    direction: str
    request: dict[str, Any]
    started_at: datetime
    simulated_start: datetime
    state: str = "playing"
    finished_at: datetime | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    twiml: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dials: list[dict[str, Any]] = field(default_factory=list)
    recording_sids: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class SimState:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._numbers: dict[str, PhoneNumber] = {}
        self._calls: dict[str, Call] = {}
        self._recordings: dict[str, Recording] = {}
        self._plays: dict[str, Play] = {}
        self.clock = SimClock()

    # ---- numbers
    def add_number(self, phone_number: str, friendly_name: str, **settings: str) -> PhoneNumber:
        with self._lock:
            if self._find_number(phone_number) is not None:
                raise NumberTaken(phone_number)
            now = utc_now()
            number = PhoneNumber(new_sid("PN"), phone_number, friendly_name, now, now, **settings)
            self._numbers[number.sid] = number
            return replace(number)

    def upsert_number(
        self, phone_number: str, friendly_name: str, **settings: str
    ) -> tuple[PhoneNumber, bool]:
        """Own `phone_number` with these settings; True when it was new."""
        with self._lock:
            existing = self._find_number(phone_number)
            if existing is None:
                return self.add_number(phone_number, friendly_name, **settings), True
            updated = self.update_number(existing.sid, settings)
            assert updated is not None
            return updated, False

    def _find_number(self, phone_number: str) -> PhoneNumber | None:
        for number in self._numbers.values():
            if number.phone_number == phone_number:
                return number
        return None

    def number_by_phone(self, phone_number: str) -> PhoneNumber | None:
        with self._lock:
            found = self._find_number(phone_number)
            return replace(found) if found else None

    def number(self, sid: str) -> PhoneNumber | None:
        with self._lock:
            found = self._numbers.get(sid)
            return replace(found) if found else None

    def numbers(self) -> list[PhoneNumber]:
        with self._lock:
            return [replace(n) for n in self._numbers.values()]

    def owned_phone_numbers(self) -> set[str]:
        with self._lock:
            return {n.phone_number for n in self._numbers.values()}

    def update_number(self, sid: str, changes: dict[str, str]) -> PhoneNumber | None:
        with self._lock:
            number = self._numbers.get(sid)
            if number is None:
                return None
            for name, value in changes.items():
                setattr(number, name, value)
            number.updated_at = utc_now()
            return replace(number)

    def delete_number(self, sid: str) -> bool:
        with self._lock:
            return self._numbers.pop(sid, None) is not None

    # ---- calls
    def put_call(self, call: Call) -> None:
        with self._lock:
            self._calls[call.sid] = replace(call)

    def update_call(self, sid: str, **changes: Any) -> None:
        with self._lock:
            call = self._calls.get(sid)
            if call is not None:
                for name, value in changes.items():
                    setattr(call, name, value)
                call.updated_at = utc_now()

    def call(self, sid: str) -> Call | None:
        with self._lock:
            found = self._calls.get(sid)
            return replace(found) if found else None

    def calls(self) -> list[Call]:
        with self._lock:
            return [replace(c) for c in self._calls.values()]

    # ---- recordings
    def put_recording(self, recording: Recording) -> None:
        with self._lock:
            self._recordings[recording.sid] = replace(recording)

    def recording(self, sid: str) -> Recording | None:
        with self._lock:
            found = self._recordings.get(sid)
            return replace(found) if found else None

    def recordings(self) -> list[Recording]:
        with self._lock:
            return [replace(r) for r in self._recordings.values()]

    def delete_recording(self, sid: str) -> bool:
        with self._lock:
            return self._recordings.pop(sid, None) is not None

    # ---- call logs
    def start_play(self, play: Play) -> None:
        with self._lock:
            self._plays[play.call_sid] = play

    def log(self, call_sid: str, section: str, entry: Any) -> None:
        """Append `entry` to one list of a play's log (callbacks, twiml, alerts...)."""
        with self._lock:
            getattr(self._plays[call_sid], section).append(copy.deepcopy(entry))

    def finish_play(self, call_sid: str, result: dict[str, Any], error: str | None) -> None:
        with self._changed:
            play = self._plays[call_sid]
            play.result = copy.deepcopy(result)
            play.error = error
            play.state = "finished"
            play.finished_at = datetime.now(UTC)
            self._changed.notify_all()

    def play(self, call_sid: str, wait: float = 0.0) -> Play | None:
        """A copy of the play's log, waiting up to `wait` seconds for it to finish."""
        with self._changed:
            self._changed.wait_for(
                lambda: call_sid not in self._plays or self._plays[call_sid].state == "finished",
                timeout=wait,
            )
            found = self._plays.get(call_sid)
            return copy.deepcopy(found) if found else None

    def plays(self) -> list[Play]:
        with self._lock:
            return [copy.deepcopy(p) for p in self._plays.values()]
