"""What /readyz and /metrics say about the faust worker: running or not, and its lag.

The worker's own loop keeps `WORKER` up to date (a task marks it running, a
timer snapshots each assigned partition's lag: the highwater minus the
committed offset); the HTTP thread only reads the snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from services.reporting.app import app

log = logging.getLogger(__name__)
LAG_INTERVAL_SECONDS = 5.0


@dataclass
class WorkerState:
    running: bool = False
    lag: dict[tuple[str, int], int] = field(default_factory=dict)

    def lag_snapshot(self) -> dict[tuple[str, int], int]:
        return dict(self.lag)


WORKER = WorkerState()


@app.task
async def mark_running() -> None:
    WORKER.running = True


@app.timer(LAG_INTERVAL_SECONDS)
async def snapshot_lag() -> None:
    consumer = app.consumer
    # faust keeps the committed offsets without a public accessor
    committed_offsets = getattr(consumer, "_committed_offset", {})
    lag: dict[tuple[str, int], int] = {}
    try:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            committed = committed_offsets.get(tp)
            if highwater is not None:
                lag[(tp.topic, tp.partition)] = max(0, highwater - (committed or 0))
    except Exception as err:  # a consumer between rebalances: keep the last snapshot
        log.debug("lag not read: %s", err)
        return
    WORKER.lag = lag
