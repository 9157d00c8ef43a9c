"""Settings of the scoring service (env prefix `KSP_`, nested with `__`)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    worker_id: str = Field("scoring-1", description="Name of this worker (Faust node id, logs).")
    consumer_group: str = Field("ksp-scoring", description="Consumer group of the scoring agent.")
    sink_group: str = Field("ksp-sink", description="Consumer group of the ClickHouse sink.")
    web_host: str = Field("127.0.0.1", description="Bind address of /healthz, /readyz, /metrics.")
    web_port: int = Field(6066, description="Port of /healthz, /readyz and /metrics.")
    agent_batch_size: int = Field(500, ge=1, description="Events the agent takes at once.")
    agent_batch_within_s: float = Field(0.05, gt=0, description="Max wait to fill an agent batch.")
    agent_concurrency: int = Field(1, ge=1, description="Agent instances per worker.")
    producer_linger_ms: int = Field(5, ge=0, description="Producer linger: batch sends this long.")
    producer_max_batch_bytes: int = Field(1_048_576, description="Producer max batch size in bytes.")
    publish_aggregates: bool = Field(
        True,
        description="Publish each agent batch's partial minute aggregates per scope to "
        "topics.aggregates (additive; at-least-once, so a replayed batch is counted again: "
        "exact numbers are ClickHouse's quality_minute, built from the deduplicated rows).",
    )
    lag_interval_s: float = Field(
        5.0, gt=0, description="How often the consumer-lag gauge of the agent and the sink is updated."
    )
    sink_enabled: bool = Field(True, description="Run the ClickHouse sink in this worker.")
    sink_batch_rows: int = Field(2000, ge=1, description="Rows per ClickHouse insert, at most.")
    sink_batch_age_s: float = Field(0.5, gt=0, description="Max age of a batch before it is inserted.")
    sink_max_poll_interval_s: float = Field(
        3600.0, description="How long the sink may retry an insert before its group evicts it."
    )
    sink_backoff_max_s: float = Field(10.0, description="Max delay between insert retries.")
    table: str = Field("feedback_events", description="Table of scored events.")
    use_uvloop: bool = Field(True, description="Run the event loop on uvloop.")

    def output_topics(self) -> list[str]:
        """Every topic the worker writes."""
        t = self.topics
        return [t.scored, t.deadletter] + ([t.aggregates] if self.publish_aggregates else [])
