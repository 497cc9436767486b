"""A closed EventProducer lets librdkafka's producer go: its threads stop logging.

A producer left open keeps reporting a broker it cannot reach
(`FAIL [rdkafka#producer-N] ... Connection refused`) until the process ends,
which after a green test run reads as a failure.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from devstack import REPO_ROOT
from switchboard.kafka import EventProducer, PublishError
from tests.support import free_port

# Aimed at a port nobody listens on, the producer logs a failed connection
# every few hundred milliseconds while it lives.
PROBE = """
import sys, time
from switchboard.kafka import EventProducer
producer = EventProducer(sys.argv[1])
time.sleep(1.0)
producer.close()
print("closed", file=sys.stderr, flush=True)
time.sleep(2.0)
"""


def test_a_closed_producer_logs_nothing_more_about_an_unreachable_broker() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    before, marker, after = done.stderr.partition("closed\n")
    assert marker, done.stderr
    assert "rdkafka#producer" in before  # the probe did reach the broker-less state
    assert "rdkafka" not in after


def test_a_closed_producer_refuses_to_publish_and_closes_twice() -> None:
    producer = EventProducer(f"127.0.0.1:{free_port()}")
    producer.close()
    producer.close()
    assert producer.flush() == 0
    with pytest.raises(PublishError):
        producer.send_raw("nowhere", b"{}", None)
