"""All Prometheus metrics of the ingest service, created on a given registry.

Tests pass a fresh `CollectorRegistry`; production uses the default one. With several
uvicorn workers, `serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers
start: every worker then writes its samples there, and `/metrics` (`exposition`) answers with the
sum over all workers, whichever worker the scrape reached.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class IngestMetrics:
    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    events_accepted: Counter
    events_rejected: Counter
    produce_seconds: Histogram
    inflight_requests: Gauge
    inflight_events: Gauge


def create_metrics(registry: CollectorRegistry) -> IngestMetrics:
    return IngestMetrics(
        registry=registry,
        requests=Counter("ksp_ingest_requests", "HTTP requests by route, method and status.",
                         ["route", "method", "status"], registry=registry),
        request_seconds=Histogram("ksp_ingest_request_seconds", "HTTP request duration by route.",
                                  ["route"], buckets=_LATENCY_BUCKETS, registry=registry),
        events_accepted=Counter("ksp_ingest_events_accepted", "Events acknowledged by Kafka.",
                                ["touchpoint"], registry=registry),
        events_rejected=Counter(
            "ksp_ingest_events_rejected",
            "Events refused, by reason (malformed, invalid, unauthorized, forbidden, "
            "rate_limited, too_large, unavailable).",
            ["reason"], registry=registry),
        produce_seconds=Histogram("ksp_ingest_produce_seconds",
                                  "Time from sending a request's events to Kafka's acknowledgement.",
                                  buckets=_LATENCY_BUCKETS, registry=registry),
        inflight_requests=Gauge("ksp_ingest_inflight_requests", "Requests being handled.",
                                registry=registry, multiprocess_mode="livesum"),
        inflight_events=Gauge("ksp_ingest_inflight_events", "Events awaiting Kafka's acknowledgement.",
                              registry=registry, multiprocess_mode="livesum"),
    )


@lru_cache(maxsize=4096)
def child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once: `labels()` validates and locks on every call,
    which costs more than the increment itself on the per-request path."""
    return metric.labels(*values)


def observe_request(metrics: IngestMetrics, route: str, method: str, status: int, started: float) -> None:
    """Count a finished request and its duration since `started` (`time.perf_counter()`)."""
    child(metrics.requests, route, method, str(status)).inc()
    child(metrics.request_seconds, route).observe(time.perf_counter() - started)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition: this process's registry, or every worker's samples summed when the
    service runs several workers (multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        return bytes(generate_latest(combined))
    return bytes(generate_latest(registry))
