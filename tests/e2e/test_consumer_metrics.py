"""The consumers' metrics that alert rules read, from /metrics after calls are played.

Analytics and recordings each count the events they processed per type
(`events_consumed_total`) and export their lag per topic partition
(`kafka_consumer_lag`); every service's /metrics passes `promtool check
metrics`, the checker Prometheus ships (installed by devstack when missing).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests
from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families

from devstack.promtool import check_metrics, ensure_promtool
from tests.e2e.conftest import System, number
from tests.e2e.test_simulated_calls import own, play
from tests.kafka_read import partitions_of, read_topic
from tests.support import wait_until

CALLS = 3


def scrape(system: System, service: str) -> str:
    reply = requests.get(f"{system.services[service].url}/metrics", timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.text


def samples(text: str, name: str) -> list[dict[str, Any]]:
    """Each sample of metric `name`: its labels plus its value under "value"."""
    return [
        {**sample.labels, "value": sample.value}
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def consumed(text: str, service: str) -> dict[str, int]:
    return {
        s["type"]: int(s["value"])
        for s in samples(text, "events_consumed_total")
        if s["service"] == service
    }


def lag(text: str, service: str) -> dict[tuple[str, int], float]:
    return {
        (s["topic"], int(s["partition"])): s["value"]
        for s in samples(text, "kafka_consumer_lag")
        if s["service"] == service
    }


def published(system: System, topics: list[str]) -> dict[str, int]:
    """How many events of each type are on `topics`: what a consumer of them must process."""
    counts: Counter[str] = Counter()
    for topic in topics:
        counts.update(m["value"]["type"] for m in read_topic(system.bootstrap, topic))
    return dict(counts)


def partitions(system: System, topics: list[str]) -> set[tuple[str, int]]:
    consumer = Consumer({"bootstrap.servers": system.bootstrap, "group.id": "partition-probe"})
    try:
        return {(tp.topic, tp.partition) for t in topics for tp in partitions_of(consumer, t)}
    finally:
        consumer.close()


def caught_up(system: System, service: str, topics: list[str]) -> tuple[dict[str, int], str]:
    """Wait until `service` counted every event on its topics and lags 0 on every partition.

    What is on the topics is read again each time: a call's last events may
    still be arriving.
    """
    every_partition = partitions(system, topics)
    seen: list[Any] = []

    def done() -> tuple[dict[str, int], str] | None:
        wanted = published(system, topics)
        text = scrape(system, service)
        lags = lag(text, service)
        seen[:] = [wanted, consumed(text, service), lags]
        if consumed(text, service) == wanted and set(lags) == every_partition:
            return (wanted, text) if not any(lags.values()) else None
        return None

    try:
        return wait_until(done, timeout=45, message=f"{service} caught up")
    except TimeoutError as err:
        raise AssertionError(f"published, counted, lag: {seen}") from err


def test_consumers_count_events_per_type_and_export_their_lag(system: System) -> None:
    client_id = system.new_client("+14155553333")
    tracked = number()
    system.assign(client_id, tracked)
    own(system, tracked)
    sids = [
        play(system, **{"from": "+12125550199", "to": tracked, "outcome": "completed"})["callSid"]
        for _ in range(CALLS)
    ]
    for sid in sids:
        system.call(sid, timeout=15)
    topics = system.topics

    analytics_topics = [topics.call_events, topics.number_events, topics.client_events]
    counted, text = caught_up(system, "analytics", analytics_topics)
    assert counted["call.received"] == CALLS, counted
    assert counted.get("recording.status-reported", 0) >= CALLS, counted
    assert "# TYPE kafka_consumer_lag gauge" in text

    recordings_topics = [topics.call_events, topics.client_events]
    counted, text = caught_up(system, "recordings", recordings_topics)
    assert counted["call.received"] == CALLS, counted
    assert "# TYPE kafka_consumer_lag gauge" in text


def test_promtool_accepts_every_services_metrics(system: System) -> None:
    promtool = ensure_promtool()
    tracked = number()
    system.assign(system.new_client("+14155553333"), tracked)
    own(system, tracked)
    system.call(play(system, **{"from": "+12125550199", "to": tracked})["callSid"], timeout=15)
    for service in ("ingress", "router", "analytics", "recordings"):
        text = scrape(system, service)
        assert "kafka_consumer_lag" in text or service in ("ingress", "router"), service
        checked = check_metrics(text, promtool)
        assert checked.returncode == 0, (service, checked.stdout, checked.stderr)
