"""The embedded infrastructure that `make run` and the test fixtures start.

On one machine without Docker, Switchboard runs on a single-node KRaft Kafka
broker started from Maven's jars (`kafka`), a PostgreSQL cluster in a data
folder of ours (`postgres`) and an nginx edge that routes the public paths to
the services (`nginx`); `run` brings the whole system up. Each part returns a
handle with its address and a `stop()`; every process is our child, so
nothing outlives the session that started it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Where downloaded parts (the Kafka jars) are kept between runs."""
    return Path(os.environ.get("SWITCHBOARD_CACHE_DIR", REPO_ROOT / ".cache")).resolve()
