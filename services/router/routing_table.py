"""The in-memory routing table: every assigned number, ready for each call.

Routing a call never waits for the database. Each process holds the whole
table (number -> assignment) and swaps in a fresh copy whenever numbers
change: `TableRefresher` LISTENs for the NOTIFY the writer sends in the same
transaction, reloads on each notice, and also reloads on a timer in case a
notice was missed. When PostgreSQL is down a reload fails, the table keeps its
last contents, and calls keep being routed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType

import psycopg

from services.router.directory import NumberAssignment
from services.router.store import ChangeListener

log = logging.getLogger(__name__)

Loader = Callable[[], list[NumberAssignment]]

# How often the refresher looks up from waiting, so stop() is prompt.
_WAKE_SECONDS = 0.25
_MAX_RETRY_SECONDS = 10.0


class RoutingTable:
    """Number -> assignment; lookups are lock-free reads of an immutable snapshot."""

    def __init__(self) -> None:
        self._numbers: MappingProxyType[str, NumberAssignment] = MappingProxyType({})
        self._loaded = False
        # Reloads are serialized so an older snapshot never replaces a newer one.
        self._reload_lock = threading.Lock()

    def lookup(self, phone_number: str) -> NumberAssignment | None:
        return self._numbers.get(phone_number)

    @property
    def loaded(self) -> bool:
        return self._loaded

    def __len__(self) -> int:
        return len(self._numbers)

    def replace(self, assignments: Iterable[NumberAssignment]) -> None:
        self._numbers = MappingProxyType({a.phone_number: a for a in assignments})
        self._loaded = True

    def reload(self, load: Loader) -> bool:
        """Replace the table with `load()`; on a database error keep it and return False."""
        with self._reload_lock:
            try:
                assignments = load()
            except psycopg.Error as err:
                log.warning("routing table reload failed, keeping %d numbers: %s", len(self), err)
                return False
            self.replace(assignments)
        log.debug("routing table reloaded: %d numbers", len(self))
        return True


class TableRefresher:
    """A daemon thread keeping a RoutingTable fresh: on NOTIFY, and every `interval`."""

    def __init__(
        self,
        table: RoutingTable,
        load: Loader,
        listen: Callable[[], ChangeListener],
        interval: float,
    ) -> None:
        self._table = table
        self._load = load
        self._listen = listen
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routing-table", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        listener: ChangeListener | None = None
        retry = 1.0
        due = time.monotonic() + self._interval
        while not self._stop.is_set():
            try:
                if listener is None:
                    listener = self._listen()
                    retry = 1.0
                    # Changes made while nobody was listening are picked up here.
                    changed = True
                else:
                    changed = listener.wait(min(_WAKE_SECONDS, max(0.01, due - time.monotonic())))
                if self._stop.is_set():
                    break
                if changed or time.monotonic() >= due:
                    reloaded = self._table.reload(self._load)
                    # A failed reload may have missed a change: try again soon.
                    again = self._interval if reloaded else min(self._interval, _MAX_RETRY_SECONDS)
                    due = time.monotonic() + again
            except Exception as err:
                # A refresher that dies leaves a stale table behind in silence: never let it.
                if isinstance(err, psycopg.Error):
                    log.warning("routing table LISTEN unavailable, retry in %.0fs: %s", retry, err)
                else:
                    log.exception("routing table refresher failed, retry in %.0fs", retry)
                if listener is not None:
                    _close_quietly(listener)
                    listener = None
                self._stop.wait(retry)
                retry = min(retry * 2, _MAX_RETRY_SECONDS)
        if listener is not None:
            _close_quietly(listener)


def _close_quietly(listener: ChangeListener) -> None:
    try:
        listener.close()
    except psycopg.Error:
        pass
