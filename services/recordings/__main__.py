"""`python -m services.recordings`: check dependencies, migrate, then serve and work.

By default one process serves the HTTP API and runs the worker and the
housekeeping job (retention, pending Twilio deletions). `--api-only` serves
HTTP alone; `--worker-only` runs the worker and housekeeping in the
foreground with no HTTP; `--migrate-only` applies the migrations and exits.
Exit codes: 2 for bad configuration, 1 for an unreachable dependency.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from confluent_kafka import KafkaException

from services.recordings import store
from services.recordings.app import build_runtime, create_app
from services.recordings.config import Config
from services.recordings.consumer import RecordingsWorker
from services.recordings.deletion import HousekeepingJob
from services.recordings.storage import StorageError, open_storage
from switchboard.kafka import ensure_topics
from switchboard.logs import configure_logging
from switchboard.pg_migrations import migrate_at_start
from switchboard.serve import serve
from switchboard.settings import ConfigError

log = logging.getLogger("services.recordings")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchboard recordings",
        description="Recordings: fetch, store, serve and expire call recordings.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--api-only", action="store_true", help="serve HTTP, run no worker")
    mode.add_argument("--worker-only", action="store_true", help="run the worker, no HTTP")
    mode.add_argument("--migrate-only", action="store_true", help="apply migrations and exit")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)

    configure_logging("recordings", os.environ.get("LOG_LEVEL", "INFO"))
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"recordings: configuration error: {err}", file=sys.stderr)
        return 2

    if not migrate_at_start("recordings", config.database_url, store.apply_migrations):
        return 1
    if args.migrate_only:
        return 0

    storage = open_storage(config)
    try:
        storage.check()
    except StorageError as err:
        print(f"recordings: storage {storage.describe()} is not usable: {err}", file=sys.stderr)
        return 1
    try:
        ensure_topics(config.kafka_bootstrap, config.topics)
    except KafkaException as err:
        if not args.api_only:
            print(
                f"recordings: Kafka at {config.kafka_bootstrap} is not reachable: {err}",
                file=sys.stderr,
            )
            return 1
        log.warning("Kafka at %s not reachable; serving anyway: %s", config.kafka_bootstrap, err)

    if args.worker_only:
        return work(config)
    run_worker = not args.api_only
    serve(
        lambda: create_app(config, run_worker=run_worker, run_housekeeping=run_worker),
        config.bind,
        "recordings",
        # One worker process: it also runs the Kafka worker and the housekeeping thread.
        workers=1,
        threads=8,
    )
    return 0


def work(config: Config) -> int:
    """The worker and housekeeping in the foreground until SIGTERM/SIGINT; 1 if it failed."""
    runtime = build_runtime(config)
    worker = RecordingsWorker(config, runtime.store, runtime.archiver, runtime.producer)
    housekeeping = HousekeepingJob(config, runtime.store, runtime.storage, runtime.deleter)
    worker.on_settings_changed = housekeeping.wake

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    housekeeping.start()
    try:
        worker.run()
    except Exception:  # logged by the worker
        return 1
    finally:
        housekeeping.stop()
        runtime.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
