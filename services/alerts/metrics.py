"""All Prometheus metrics of the alerts service, declared in one place."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AlertsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter("ksp_alerts_events_evaluated_total", "Scored events evaluated",
                              registry=registry)
        self.alerts = Counter("ksp_alerts_state_changes_total", "Alert state changes",
                              ["kind", "severity", "status"], registry=registry)
        self.deliveries = Counter("ksp_alerts_deliveries_total", "Delivery attempts by outcome",
                                  ["channel", "outcome"], registry=registry)
        self.detection_latency = Histogram(
            "ksp_alerts_detection_latency_seconds", "Accepted event -> alert delivered",
            registry=registry, buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
        )
