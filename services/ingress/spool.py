"""The local durable spool: where an event waits when Kafka cannot take it.

A webhook that got a 2xx is never lost: its event is acknowledged by Kafka or
written here (fsynced, renamed into place, directory fsynced) before the
reply. A drainer thread sends spooled events to Kafka oldest first and
deletes each file only after Kafka acknowledged it. While anything is
spooled, new events queue behind it so one call's events keep their order.
Several worker processes may share the folder: a file lock lets one drain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from switchboard.kafka import EventProducer, PublishError

log = logging.getLogger(__name__)


class SpoolError(Exception):
    """The spool could not make an event durable (disk full, unwritable)."""


@dataclass(frozen=True)
class SpooledEvent:
    topic: str
    key: str | None
    value: bytes


class Spool:
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.folder / ".drain.lock"
        self._seq = 0
        self._seq_lock = threading.Lock()

    def _entries(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.suffix == ".event")

    def depth(self) -> int:
        try:
            return len(self._entries())
        except OSError:
            return 0

    def is_empty(self) -> bool:
        try:
            with os.scandir(self.folder) as entries:
                return not any(e.name.endswith(".event") for e in entries)
        except OSError:
            return True  # nothing can be waiting in a folder that is not there

    def append(self, event: SpooledEvent) -> Path:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        name = f"{time.time_ns():020d}-{os.getpid():07d}-{seq:06d}.event"
        record = {
            "topic": event.topic,
            "key": event.key,
            "value": event.value.decode(),
        }
        tmp = self.folder / (name + ".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(json.dumps(record).encode())
                handle.flush()
                os.fsync(handle.fileno())
            final = self.folder / name
            os.rename(tmp, final)
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise SpoolError(f"cannot write to spool {self.folder}: {err}") from err
        return final

    def drain(self, producer: EventProducer, timeout: float) -> int:
        """Send spooled events in order; stop at the first failure. Returns the count sent."""
        sent = 0
        with open(self._lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another worker is draining
            for path in self._entries():
                try:
                    record = json.loads(path.read_bytes())
                except (OSError, json.JSONDecodeError) as err:
                    log.error("unreadable spool file %s kept aside: %s", path, err)
                    path.rename(path.with_suffix(".corrupt"))
                    continue
                try:
                    producer.publish_raw(
                        record["topic"], record["value"].encode(), record["key"], timeout
                    )
                except PublishError as err:
                    log.warning("spool drain paused, Kafka unavailable: %s", err)
                    break
                path.unlink()
                sent += 1
        return sent


    def scrub(self, number: str, token: str) -> int:
        """Replace `number` by `token` in every spooled event (a caller's erasure); files changed.

        Under the drain lock, so a drain never sends a file half rewritten;
        each file is replaced as `append` writes one (fsynced, renamed).
        """
        old, new = number.encode(), token.encode()
        changed = 0
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for path in self._entries():
                try:
                    content = path.read_bytes()
                except FileNotFoundError:
                    continue
                if old not in content:
                    continue
                tmp = path.with_name(path.name + ".tmp")
                with open(tmp, "wb") as handle:
                    handle.write(content.replace(old, new))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.rename(tmp, path)
                changed += 1
            if changed:
                dir_fd = os.open(self.folder, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        return changed


class Drainer(threading.Thread):
    """Drains the spool in the background every `interval` seconds."""

    def __init__(self, spool: Spool, producer: EventProducer, interval: float = 1.0) -> None:
        super().__init__(name="spool-drainer", daemon=True)
        self.spool = spool
        self.producer = producer
        self.interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            if self.spool.is_empty():
                continue
            try:
                sent = self.spool.drain(self.producer, timeout=5.0)
                if sent:
                    log.info("drained %d spooled events to Kafka", sent)
            except Exception:  # the drainer must outlive any one bad file
                log.exception("spool drain failed")

    def stop(self) -> None:
        self._stopped.set()
