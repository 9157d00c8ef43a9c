"""All Prometheus metrics of the scoring service, declared in one place."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_scored = Counter(
            "ksp_scoring_events_scored_total", "Events scored", ["touchpoint"], registry=registry
        )
        self.dead_letters = Counter(
            "ksp_scoring_dead_letters_total", "Messages sent to the dead-letter topic", ["reason"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "ksp_scoring_batch_duration_seconds", "Time to score and publish one agent batch",
            registry=registry, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.output_resends = Counter(
            "ksp_scoring_output_resends_total",
            "Scored events, dead letters and aggregates sent again because the broker failed them "
            "(the agent waits and resends until every output of a batch is acknowledged)",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "ksp_scoring_consumer_lag_messages",
            "Messages not yet committed per partition (high watermark from the last fetch response "
            "minus committed offset), for the scoring agent's and the sink's consumer groups",
            ["group", "topic", "partition"], registry=registry,
        )
        self.sink_rows = Counter(
            "ksp_sink_rows_inserted_total", "Rows inserted into ClickHouse", registry=registry
        )
        self.sink_duplicates = Counter(
            "ksp_sink_duplicates_skipped_total", "Consumed events already stored (not inserted again)",
            registry=registry,
        )
        self.sink_unreadable = Counter(
            "ksp_sink_unreadable_messages_total", "Scored-topic messages the sink could not read",
            registry=registry,
        )
        self.sink_dead_letters = Counter(
            "ksp_sink_dead_letters_total",
            "Scored-topic messages the sink sent to the dead-letter topic, by ClickHouse error name "
            "(UNREADABLE: the sink could not read the message)", ["error"], registry=registry,
        )
        self.sink_insert_failures = Counter(
            "ksp_sink_insert_failures_total",
            "Failed ClickHouse writes of the sink: transient (retried with backoff) or refused "
            "(rows refused for good; the batch is bisected to isolate them)", ["kind"], registry=registry,
        )
        self.sink_batch_rows = Histogram(
            "ksp_sink_batch_rows", "Messages per sink batch", registry=registry,
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
        )
        self.sink_batch_seconds = Histogram(
            "ksp_sink_batch_duration_seconds", "Time to store and commit one sink batch",
            registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def observe_sink_batch(self, messages: int, inserted: int, seconds: float, dead_lettered: int = 0) -> None:
        self.sink_rows.inc(inserted)
        self.sink_duplicates.inc(max(0, messages - inserted - dead_lettered))
        self.sink_batch_rows.observe(messages)
        self.sink_batch_seconds.observe(seconds)
