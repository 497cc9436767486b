"""Publishing the events that changes wrote into the outbox table.

A change and its events commit together (store.Tx.enqueue), so an event can
never be lost to a Kafka outage nor published for a change that rolled back.
`OutboxRelay` is the daemon thread that moves them to Kafka: woken at once by
`kick()` after a commit in this process, and every `interval` seconds anyway
(for events of other processes and for retries while Kafka is down). Requests
never wait for Kafka.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from services.router.store import Store
from switchboard.kafka import EventProducer

log = logging.getLogger(__name__)

BATCH = 100
_MAX_RETRY_SECONDS = 10.0


class OutboxRelay:
    def __init__(
        self,
        store: Store,
        producer: EventProducer,
        publish_timeout: float = 5.0,
        interval: float = 2.0,
    ) -> None:
        self._store = store
        self._producer = producer
        self._publish_timeout = publish_timeout
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        """Something was committed: publish it now rather than at the next tick."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def drain(self) -> int:
        """Publish everything waiting; the number published. Raises what stopped it."""
        total = 0
        while not self._stop.is_set():
            published, error = self._store.drain_outbox(self._publish, BATCH)
            total += published
            if error is not None:
                raise error
            if published < BATCH:
                break
        return total

    def _publish(self, topic: str, key: str, payload: bytes) -> None:
        self._producer.publish_raw(topic, payload, key, self._publish_timeout)

    def _run(self) -> None:
        retry = 1.0
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.drain()
                retry = 1.0
            except Exception as err:
                # A relay that dies leaves events behind in silence: never let it.
                if isinstance(err, psycopg.Error):
                    log.warning("outbox: database unavailable, retry in %.0fs: %s", retry, err)
                else:
                    log.warning("outbox: publishing failed, retry in %.0fs: %s", retry, err)
                self._stop.wait(retry)
                retry = min(retry * 2, _MAX_RETRY_SECONDS)
