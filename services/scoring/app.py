"""Where the scoring service is wired: Faust app, agent, sink, web endpoints."""

from __future__ import annotations

import logging
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.web import Request, Response, View
from mode import Service
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.common.clickhouse import connect
from services.common.faust_kafka import (
    base_config,
    direct_sender,
    new_app,
    producer_config,
    track_output_topics,
)
from services.common.kafka import aiokafka_config
from services.scoring.lag import register_lag_reporter
from services.scoring.metrics import ScoringMetrics
from services.scoring.pipeline import ScoringPipeline, Send
from services.scoring.scorers.event import TextAnalyser
from services.scoring.settings import ScoringSettings
from services.scoring.sink.consumer import ClickHouseSink
from services.scoring.sink.writer import ClickHouseWriter

log = logging.getLogger("ksp.scoring")


def faust_config(settings: ScoringSettings) -> dict[str, Any]:
    config = base_config(settings.kafka, app_id=settings.consumer_group, worker_id=settings.worker_id)
    return config | {
        **producer_config(settings.producer_linger_ms, settings.producer_max_batch_bytes),
        "topic_replication_factor": settings.kafka.replication_factor,
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "web_host": settings.web_host,
        "web_in_thread": False,
    }


class SinkService(Service):
    """Runs the ClickHouse sink beside the agent, and flushes it on shutdown."""

    def __init__(self, settings: ScoringSettings, metrics: ScoringMetrics, send_dead_letter: Send,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.send_dead_letter = send_dead_letter
        self.sink: ClickHouseSink | None = None
        self.consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            **aiokafka_config(s.kafka), group_id=s.sink_group, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=int(s.kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.kafka.heartbeat_interval_s * 1000),
            max_poll_interval_ms=int(s.sink_max_poll_interval_s * 1000),
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_wait_ms=s.kafka.fetch_max_wait_ms,
        )
        table = f"{s.clickhouse.database}.{s.table}"
        writer = ClickHouseWriter(lambda: connect(s.clickhouse), table, s.topics.scored,
                                  backoff_max_s=s.sink_backoff_max_s,
                                  on_failure=lambda kind: self.metrics.sink_insert_failures.labels(kind).inc())
        self.sink = ClickHouseSink(self.consumer, writer, s.topics.scored, self.metrics, self.send_dead_letter,
                                   max_rows=s.sink_batch_rows, max_age_s=s.sink_batch_age_s)
        self.consumer.subscribe([s.topics.scored], listener=self.sink.listener())
        await self.consumer.start()

    @Service.task
    async def _consume(self) -> None:
        assert self.sink is not None
        await self.sink.run()

    async def on_stop(self) -> None:
        if self.sink is not None:
            await self.sink.stop()
        if self.consumer is not None:
            await self.consumer.stop()


def build_app(settings: ScoringSettings, registry: CollectorRegistry | None = None,
              analyse_text: TextAnalyser | None = None) -> faust.App:
    if analyse_text is None:
        from services.scoring.text import analyse

        analyse_text = analyse
    registry = registry or CollectorRegistry()
    metrics = ScoringMetrics(registry)
    app = new_app(faust_config(settings), settings.kafka)
    pipeline = ScoringPipeline(analyse_text=analyse_text, send_scored=direct_sender(app, settings.topics.scored),
                               send_dead_letter=direct_sender(app, settings.topics.deadletter),
                               send_aggregate=direct_sender(app, settings.topics.aggregates)
                               if settings.publish_aggregates else None,
                               raw_topic=settings.topics.raw, metrics=metrics)
    from services.scoring.agents import register_agents

    register_agents(app, settings, pipeline)
    track_output_topics(app, settings.output_topics())
    sink = None
    if settings.sink_enabled:
        sink = SinkService(settings, metrics, direct_sender(app, settings.topics.deadletter), loop=None)  # type: ignore[arg-type]
        app.service(sink)  # type: ignore[arg-type]  # an instance works too
    register_lag_reporter(app, metrics, settings.lag_interval_s, settings.topics.raw,
                          settings.sink_group if sink else None, lambda: sink.consumer if sink else None)
    _register_pages(app, registry)
    return app


def _register_pages(app: faust.App, registry: CollectorRegistry) -> None:
    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            assigned = app.consumer.assignment() if app.consumer else set()
            ready = bool(assigned) or app.rebalancing is False and app.started
            return self.json({"ready": ready, "partitions": len(assigned)}, status=200 if ready else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway.
            return self.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])
