"""All Prometheus metrics of the alerts service, declared in one place."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AlertsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter("ksp_alerts_events_evaluated_total", "Scored events evaluated",
                              registry=registry)
        self.repartitioned = Counter("ksp_alerts_repartitioned_total", "Scored events re-published to "
                                     "the repartition topics, by route (scope level or customer)",
                                     ["route"], registry=registry)
        self.unreadable = Counter("ksp_alerts_events_unreadable_total", "Scored events that failed "
                                  "validation, and repartition messages that could not be unpacked, "
                                  "skipped (logged with their position)", registry=registry)
        self.alerts = Counter("ksp_alerts_state_changes_total", "Alert state changes",
                              ["kind", "severity", "status"], registry=registry)
        self.fired = Counter("ksp_alerts_fired_total", "Alerts fired, by rule and severity",
                             ["rule", "severity"], registry=registry)
        self.resolved = Counter("ksp_alerts_resolved_total", "Alerts resolved (condition cleared), "
                                "by rule and severity", ["rule", "severity"], registry=registry)
        self.firing = Gauge("ksp_alerts_firing", "Alerts currently firing", registry=registry)
        self.notifications = Counter("ksp_alerts_notifications_total", "Notifications handed to the "
                                     "outbox, by receiver and status (firing, resolved, or escalation "
                                     "for an SLA breach)", ["receiver", "status"], registry=registry)
        self.deliveries = Counter("ksp_alerts_deliveries_total", "Delivery attempts by channel and "
                                  "outcome (delivered, failed, parked)", ["channel", "outcome"], registry=registry)
        self.parked = Gauge("ksp_alerts_deliveries_parked", "Deliveries parked (kept, replayable)",
                            registry=registry)
        self.pending = Gauge("ksp_alerts_deliveries_pending", "Deliveries in flight or waiting to retry",
                             registry=registry)
        self.detection_latency = Histogram(
            "ksp_alerts_detection_latency_seconds", "Accepted event -> alert delivered",
            registry=registry, buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
        )
        self.case_events = Counter("ksp_alerts_case_events_total", "Case events recorded, by action",
                                   ["action"], registry=registry)
        self.cases = Gauge("ksp_alerts_cases", "Cases by state", ["state"], registry=registry)
        self.cases_forgotten = Counter("ksp_alerts_cases_forgotten_total", "Cases over (resolved, "
                                       "condition cleared) longer than the case retention, dropped from "
                                       "memory (still on the cases topic and in ClickHouse)", registry=registry)
        self.case_rewrites = Counter("ksp_alerts_case_table_rewrites_total", "Case writes to the cases "
                                     "table not read back from its changelog in time, written again",
                                     registry=registry)
        self.case_writes_unconfirmed = Gauge("ksp_alerts_case_table_unconfirmed_writes", "Case writes to "
                                             "the cases table not read back from its changelog yet",
                                             registry=registry)
        self.escalations = Counter("ksp_alerts_escalations_total", "Cases escalated (SLA ran out), "
                                   "by severity", ["severity"], registry=registry)
        self.rules_reloads = Counter("ksp_alerts_rules_reloads_total", "Rules hot reloads applied",
                                     registry=registry)
        self.detector_snapshots = Counter(
            "ksp_alerts_detector_snapshots_total", "Detector state records (a drop detector's scope "
            "or a customer's churn history, under one rule) queued for the state topic", registry=registry)
        self.detector_restores = Counter(
            "ksp_alerts_detector_restores_total", "Drop-detector scopes and customers' churn histories "
            "given their learned state back from the state topic (at start or with partitions gained)", registry=registry)
        self.tick_errors = Counter("ksp_alerts_tick_errors_total", "Failed housekeeping ticks",
                                   registry=registry)
