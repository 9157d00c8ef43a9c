"""Where the alerts service is wired: Faust app, agent, tick, outbox, cases, FastAPI in the worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import faust
import httpx
from faust.contrib.asgi import serve_asgi
from mode import Service
from prometheus_client import CollectorRegistry

from services.alerts.agents import Handlers, register_agents
from services.alerts.api import build_api
from services.alerts.cases.log import HistoryWriter, replay_topic
from services.alerts.cases.table import CaseTable, changelog_topic
from services.alerts.delivery.alertmanager import AlertmanagerChannel
from services.alerts.delivery.base import Channel
from services.alerts.delivery.email import EmailChannel
from services.alerts.delivery.outbox import Outbox
from services.alerts.delivery.slack import SlackChannel
from services.alerts.delivery.webhook import WebhookChannel
from services.alerts.handover import Handover
from services.alerts.metrics import AlertsMetrics
from services.alerts.packing import Message
from services.alerts.repartition import InternalTopics, Repartitioner
from services.alerts.service import AlertsRuntime
from services.alerts.settings import AlertsSettings
from services.alerts.state.durable import apply_remote
from services.alerts.state.log import StateLog, StateTopicReader, latest
from services.alerts.state.records import StateRecord
from services.common.clickhouse import connect
from services.common.faust_kafka import (
    base_config,
    direct_sender,
    new_app,
    producer_config,
    track_output_topics,
)
from services.common.kafka import ensure_topics, partition_count

log = logging.getLogger("ksp.alerts")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per delivery attempt otherwise


def faust_config(settings: AlertsSettings) -> dict[str, Any]:
    config = base_config(settings.kafka, app_id=settings.consumer_group, worker_id=settings.worker_id)
    # one record per batch makes the broker's reported end exact (see KafkaSettings.end_offsets_exact)
    max_batch = settings.producer_max_batch_bytes if settings.kafka.end_offsets_exact else 1
    return config | producer_config(settings.producer_linger_ms, max_batch) | {
        "web_enabled": True,
        "web_bind": settings.api_host,
        "web_port": settings.api_port,
        "web_host": settings.api_host,
    }


def build_channels(settings: AlertsSettings, client: httpx.AsyncClient) -> tuple[dict[str, Channel], list[str], dict[str, int]]:
    """Named channels from `receivers`, plus the fallback webhooks from `webhook_urls`."""
    base_url = settings.base_url()
    default_secret = settings.webhook_secret.get_secret_value().encode()
    channels: dict[str, Channel] = {}
    attempts: dict[str, int] = {}
    for name, r in settings.receivers.items():
        if r.type in ("webhook", "slack", "alertmanager") and not r.url:
            raise ValueError(f"receiver {name!r} ({r.type}) needs a url")
        if r.type == "webhook":
            secret = r.secret.get_secret_value().encode() if r.secret else default_secret
            channels[name] = WebhookChannel(client, name, r.url or "", secret)
        elif r.type == "slack":
            channels[name] = SlackChannel(client, name, r.url or "", base_url)
        elif r.type == "alertmanager":
            channels[name] = AlertmanagerChannel(client, name, r.url or "", base_url)
        else:
            channels[name] = EmailChannel(name, settings.smtp, r.to, base_url)
        if r.attempts:
            attempts[name] = r.attempts
    fallback = []
    for i, url in enumerate(settings.webhook_urls):
        name = "webhook" if i == 0 else f"webhook-{i + 1}"
        while name in channels:
            name += "-fallback"
        channels[name] = WebhookChannel(client, name, url, default_secret)
        fallback.append(name)
    return channels, fallback, attempts


def build_engine(settings: AlertsSettings) -> tuple[Any, Any, Any]:
    """AlertEvaluator, Notifier and RulesWatcher (None without a rules file) from the rules."""
    from services.alerts.flows import AlertEvaluator
    from services.alerts.notify import Notifier
    from services.alerts.rules import RulesWatcher, load_rules

    rules = load_rules(settings.rules_path)
    watcher = RulesWatcher(settings.rules_path) if settings.rules_path else None
    return AlertEvaluator(rules), Notifier(rules.routing), watcher


class AlertsService(Service):
    """Start-up (once the cases table is recovered: state topic, then `started`), the periodic
    tick, history writer, and the graceful stop (flush what is due, wait for deliveries in flight)."""

    def __init__(self, runtime: AlertsRuntime, client: httpx.AsyncClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.client = client
        self.state_reader: StateTopicReader | None = None

    async def on_cases_recovered(self) -> None:
        """Faust recovered the cases table (after every rebalance): the first time, the rest of
        the start-up. Nothing is processed before this returns."""
        if self.runtime.started.is_set():
            return
        rt = self.runtime
        if not rt.cases.cases:
            await self._rebuild_from_log()
        forgotten = rt.forget_cases(rt.clock())
        log.info("cases table recovered: %d cases (%d over and older than the retention deleted)",
                 len(rt.cases.cases), forgotten)
        await self._restore_state()
        rt.started.set()

    async def _rebuild_from_log(self) -> None:
        """An empty table with case events on the cases topic (its changelog lost, or cases
        written before the table existed): fold the event log into the table."""
        s = self.runtime.settings
        applied = self.runtime.cases.rebuild(await replay_topic(s.kafka, s.cases_topic, s.rebuild_timeout_s))
        if applied and self.runtime.table is not None:
            for case in self.runtime.cases.cases.values():
                self.runtime.table.put(case)
            await self.runtime.table.flush()
            log.warning("cases table was empty: %d cases rebuilt from %d events on %s", len(self.runtime.cases.cases),
                        applied, s.cases_topic)

    async def _restore_state(self) -> None:
        """Deliveries, silences, notification groups and firing alerts from before a restart."""
        s = self.runtime.settings
        topic = s.state_topic_name()
        self.state_reader = StateTopicReader(s.kafka, topic)
        await self.state_reader.start(s.rebuild_timeout_s)
        records = latest(await self.state_reader.replay(s.rebuild_timeout_s))
        log.info("state restored from %s: %s", topic, self.runtime.restore(records))

    @Service.task
    async def _follow_state(self) -> None:
        """Silences created or deleted on other workers (state/durable.py apply_remote)."""
        await self.runtime.started.wait()
        while not self.should_stop and self.state_reader is not None:
            try:
                for key, record in await self.state_reader.poll(1000):
                    apply_remote(self.runtime, key, record, self.runtime.clock())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the state topic failed; retrying")
                await self.sleep(1.0)

    @Service.task
    async def _tick(self) -> None:
        interval = self.runtime.settings.tick_interval_s
        while not self.should_stop:
            await self.sleep(interval)
            if self.should_stop:
                break
            try:
                await self.runtime.tick()
            except Exception:
                self.runtime.metrics.tick_errors.inc()
                log.exception("alerts tick failed")

    @Service.task
    async def _history(self) -> None:
        if self.runtime.history is not None:
            await self.runtime.history.run()

    async def on_stop(self) -> None:
        await self.runtime.flush(self.runtime.settings.shutdown_flush_s)
        await self.runtime.outbox.close()
        if self.state_reader is not None:
            await self.state_reader.stop()
        if self.runtime.history is not None:
            self.runtime.history.close()
        await self.client.aclose()


TopicKind = tuple[list[str], int | None, dict[str, str] | None]  # names, partitions, topic configs


def output_topic_kinds(settings: AlertsSettings, topics: InternalTopics, partitions: int | None) -> list[TopicKind]:
    """Every topic the worker writes, with how it is created: by-scope/by-customer get
    `partitions` (the scored topic's count), so detection spreads as far as the input does;
    notify has one partition: one notifying worker; the cases topic never expires (the event
    log the cases table can be rebuilt from); the cases table's changelog and the state topic
    are compacted (the latest record per key is the state)."""
    return [
        ([topics.by_scope, topics.by_customer], partitions, None),
        ([topics.notify], 1, None),
        ([settings.cases_topic], None, {"retention.ms": "-1"}),
        ([changelog_topic(settings.consumer_group)], None, {"cleanup.policy": "compact"}),
        ([settings.topics.alerts], None, None),
        ([settings.state_topic_name()], None, {"cleanup.policy": "compact"}),
    ]


def ensure_output_topics(settings: AlertsSettings) -> tuple[InternalTopics, list[str]]:
    """Every topic the worker writes exists before it starts (Tansu never acknowledges records
    for unknown topics, and the producer tracks them all from the start: `track_topics`);
    returns the repartition topics and the names of all."""
    topics = InternalTopics.of(settings.consumer_group)
    partitions = settings.repartition_partitions or partition_count(settings.kafka, settings.topics.scored)
    kinds = output_topic_kinds(settings, topics, partitions)
    for names, count, configs in kinds:
        ensure_topics(settings.kafka, names, count, configs)
    return topics, [name for names, _, _ in kinds for name in names]


async def replay_state(settings: AlertsSettings) -> list[StateRecord]:
    """The state topic as of now (latest record per key): what a new notifier takes over."""
    reader = StateTopicReader(settings.kafka, settings.state_topic_name())
    try:
        await reader.start(settings.rebuild_timeout_s)
        return latest(await reader.replay(settings.rebuild_timeout_s))
    finally:
        await reader.stop()


def follow_assignment(app: faust.App, handover: Handover) -> None:
    """Faust's rebalance signals -> the handover of the notifier and of detector state."""

    # Faust calls receivers as (sender, the set of TPs, signal=...)
    async def revoked(_app: Any, *args: Any, **_kwargs: Any) -> None:
        await handover.on_revoked(set(args[0]))

    async def assigned(_app: Any, *args: Any, **_kwargs: Any) -> None:
        await handover.on_assigned(set(args[0]))

    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]  # mode types it oddly
    app.on_partitions_assigned.connect(assigned)  # type: ignore[arg-type]


def skip_unreadable(metrics: AlertsMetrics) -> Callable[[Message, ValueError], None]:
    def unreadable(message: Message, exc: ValueError) -> None:
        metrics.unreadable.inc()
        where = getattr(message, "message", None)  # a Faust event: its Kafka message's position
        log.error("unreadable repartition message skipped at %s offset %s: %s",
                  getattr(where, "tp", "?"), getattr(where, "offset", "?"), exc)

    return unreadable


def build_app(settings: AlertsSettings, registry: CollectorRegistry | None = None) -> faust.App:
    registry = registry or CollectorRegistry()
    metrics = AlertsMetrics(registry)
    app = new_app(faust_config(settings), settings.kafka)
    alerts_topic = app.topic(settings.topics.alerts, key_serializer="raw", value_serializer="raw")
    cases_topic = app.topic(settings.cases_topic, key_serializer="raw", value_serializer="raw")
    client = httpx.AsyncClient(timeout=settings.delivery_timeout_s)
    channels, fallback, attempts = build_channels(settings, client)
    outbox = Outbox(channels, fallback=fallback, attempts=settings.delivery_attempts,
                    backoff_s=settings.delivery_backoff_s, backoff_max_s=settings.delivery_backoff_max_s,
                    timeout_s=settings.delivery_timeout_s + 1, attempts_by_channel=attempts)
    evaluator, notifier, watcher = build_engine(settings)
    history = (HistoryWriter(lambda: connect(settings.clickhouse), settings.clickhouse.database)
               if settings.clickhouse_history else None)
    state_topic = app.topic(settings.state_topic_name(), key_serializer="raw", value_serializer="raw")
    topics, written = ensure_output_topics(settings)
    track_output_topics(app, written)
    notify_topic = app.topic(topics.notify, key_serializer="raw", value_serializer="raw")
    runtime = AlertsRuntime(settings, evaluator=evaluator, notifier=notifier, outbox=outbox, metrics=metrics,
                            publish_alert=alerts_topic.send, publish_case=cases_topic.send, history=history,
                            watcher=watcher, state_log=StateLog(state_topic.send),
                            publish_notify=notify_topic.send)
    service = AlertsService(runtime, client, loop=None)  # type: ignore[arg-type]
    runtime.table = CaseTable.in_app(app, partition_count(settings.kafka, changelog_topic(settings.consumer_group)) or 1,
                                     on_case=runtime.adopt, on_gone=runtime.gone,
                                     on_recovered=service.on_cases_recovered)
    partitions = {"scope": partition_count(settings.kafka, topics.by_scope) or 1,
                  "customer": partition_count(settings.kafka, topics.by_customer) or 1}
    follow_assignment(app, Handover(runtime, topics, partitions, lambda: replay_state(settings)))
    forward = Repartitioner(evaluator.scope_levels, {
        "scope": direct_sender(app, topics.by_scope),
        "customer": direct_sender(app, topics.by_customer),
    }, metrics, partitions).forward
    register_agents(app, settings, topics, Handlers(forward=forward, scopes=runtime.handle_scopes,
                                                     customers=runtime.handle_customers,
                                                     notify=runtime.handle_notify,
                                                     unreadable=skip_unreadable(metrics)))
    app.service(service)  # type: ignore[arg-type]

    def ready() -> tuple[bool, int]:
        assigned = app.consumer.assignment() if app.consumer else set()
        return bool(assigned), len(assigned)

    api = build_api(runtime, registry, ready=ready, clickhouse=lambda: connect(settings.clickhouse))
    serve_asgi(app, api, host=settings.api_host, port=settings.api_port)
    app.alerts_runtime = runtime  # type: ignore[attr-defined]
    return app
