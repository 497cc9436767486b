"""What /readyz and /metrics say about the faust worker: running or not, and its lag.

The worker's own loop keeps `WORKER` up to date (a task marks it running, a
timer snapshots each assigned partition's lag: the highwater minus the
committed offset); the HTTP thread only reads the snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.reporting.app import app

log = logging.getLogger(__name__)
LAG_INTERVAL_SECONDS = 5.0
# Back-off of a step that failed on PostgreSQL or Kafka, before it is tried again.
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.5, 30.0


@dataclass
class WorkerState:
    running: bool = False
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    # what is failing now (a step retried until it works), shown by /readyz
    problems: dict[str, str] = field(default_factory=dict)

    def lag_snapshot(self) -> dict[tuple[str, int], int]:
        return dict(self.lag)


WORKER = WorkerState()


async def until_done(
    what: str,
    step: Callable[[], Awaitable[None]],
    worker: WorkerState = WORKER,
    first: float = RETRY_FIRST_SECONDS,
) -> None:
    """Run `step` until it succeeds, backing off between tries.

    The agent holds its message meanwhile (it is not acknowledged, so its
    offset is not committed): a database or broker outage delays alerts and
    loses none. /readyz names the step while it fails.
    """
    delay = first
    while True:
        try:
            await step()
        except Exception as err:  # PostgreSQL, Kafka or a sender: tried again
            worker.problems[what] = f"{type(err).__name__}: {err}"
            log.warning("%s failed, trying again in %.1fs: %s", what, delay, err)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            continue
        worker.problems.pop(what, None)
        return


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
