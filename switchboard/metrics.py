"""Prometheus metrics for every service: HTTP traffic plus each service's own counters.

`install_metrics(app, service)` times every request (count and latency
histogram by route and status) and serves GET /metrics. Under gunicorn with
several workers, `switchboard.serve` points PROMETHEUS_MULTIPROC_DIR at a
folder of its own before the workers start, and /metrics adds up all
workers. prometheus_client is imported only inside these functions, after
that variable is set, because the library picks its storage at import time.
Gauges that are cheap to read at scrape time (spool depth, consumer lag)
come from `Metrics.on_scrape` callbacks instead of being kept up to date.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

_LOCK = threading.Lock()
_METRICS: dict[str, Any] = {}

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _metric(kind: str, name: str, doc: str, labels: tuple[str, ...], **extra: Any) -> Any:
    """One process-wide metric per name (prometheus refuses to register twice)."""
    import prometheus_client

    with _LOCK:
        if name not in _METRICS:
            cls = getattr(prometheus_client, kind)
            _METRICS[name] = cls(name, doc, labels, **extra)
        return _METRICS[name]


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
    return _metric("Counter", name, doc, labels)


def histogram(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
    return _metric("Histogram", name, doc, labels, buckets=LATENCY_BUCKETS)


@dataclass(frozen=True)
class SeriesHook:
    """A gauge read at scrape time whose series carry labels besides `service`."""

    name: str
    doc: str
    labels: tuple[str, ...]
    read: Callable[[], dict[tuple[str, ...], float]]


class Metrics:
    """The metrics of one service process."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._scrape_hooks: list[Callable[[], dict[str, tuple[str, float]]]] = []
        self._series_hooks: list[SeriesHook] = []
        self.requests = counter(
            "http_requests_total", "HTTP requests served", ("service", "method", "route", "status")
        )
        self.latency = histogram(
            "http_request_duration_seconds", "HTTP request latency", ("service", "route")
        )
        self.events_produced = counter(
            "events_produced_total", "Events made durable (Kafka or spool)", ("service", "type")
        )
        self.events_consumed = consumed_counter()
        self.dead_letters = dead_letter_counter()

    def produced(self, event_type: str) -> None:
        self.events_produced.labels(self.service, event_type).inc()

    def consumed(self, event_type: str, count: int = 1) -> None:
        self.events_consumed.labels(self.service, event_type).inc(count)

    def dead_lettered(self, count: int = 1) -> None:
        self.dead_letters.labels(self.service).inc(count)

    def on_scrape(self, hook: Callable[[], dict[str, tuple[str, float]]]) -> None:
        """Add gauges read at scrape time: hook() -> {name: (help, value)}."""
        self._scrape_hooks.append(hook)

    def on_scrape_series(
        self,
        name: str,
        doc: str,
        labels: tuple[str, ...],
        read: Callable[[], dict[tuple[str, ...], float]],
    ) -> None:
        """Add a gauge with labels besides `service`, read at scrape time.

        read() -> {label values: value}, label values in the order of `labels`.
        """
        self._series_hooks.append(SeriesHook(name, doc, labels, read))

    def watch_consumer(self, lag: Callable[[], dict[tuple[str, int], int]]) -> None:
        """Export a consumer's lag per topic partition (`kafka_consumer_lag`), read at scrape time.

        `lag` must be cheap and safe from any thread: a consumer's
        `Progress.lag`, which the consumer's own thread keeps up to date.
        """

        def read() -> dict[tuple[str, ...], float]:
            return {(topic, str(partition)): value for (topic, partition), value in lag().items()}

        self.on_scrape_series(
            "kafka_consumer_lag",
            "Messages in a partition past the consumer group's committed offset",
            ("topic", "partition"),
            read,
        )

    def render(self) -> tuple[bytes, str]:
        import prometheus_client
        from prometheus_client.core import GaugeMetricFamily

        hooks = self._scrape_hooks
        series = self._series_hooks
        service = self.service

        class _Live:
            def collect(self) -> Iterator[Any]:
                for hook in hooks:
                    for name, (doc, value) in hook().items():
                        family = GaugeMetricFamily(name, doc, labels=["service"])
                        family.add_metric([service], value)
                        yield family
                for gauge in series:
                    family = GaugeMetricFamily(
                        gauge.name, gauge.doc, labels=["service", *gauge.labels]
                    )
                    for values, value in sorted(gauge.read().items()):
                        family.add_metric([service, *values], value)
                    yield family

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = prometheus_client.REGISTRY
        body = prometheus_client.generate_latest(registry)
        live = prometheus_client.CollectorRegistry()
        live.register(_Live())
        return body + prometheus_client.generate_latest(live), prometheus_client.CONTENT_TYPE_LATEST


def consumed_counter() -> Any:
    """Counted by every consumer (switchboard.consumer.Progress) once an event's work is durable."""
    return counter("events_consumed_total", "Events a consumer processed", ("service", "type"))


def dead_letter_counter() -> Any:
    """Counted by switchboard.kafka.dead_letter for every consumer, labelled by consumer."""
    return counter("dead_letters_total", "Messages sent to the dead-letter topic", ("consumer",))


def install_metrics(app: Flask, service: str) -> Metrics:
    metrics = Metrics(service)
    app.extensions["metrics"] = metrics

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            metrics.requests.labels(service, request.method, route, str(response.status_code)).inc()
            metrics.latency.labels(service, route).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def _metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    return metrics
