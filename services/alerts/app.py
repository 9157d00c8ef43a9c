"""Where the alerts service is wired: Faust app, agent, delivery, HTTP API."""

from __future__ import annotations

from typing import Any

import faust
import httpx
from mode import Service
from prometheus_client import CollectorRegistry

from services.alerts.agents import register_agents
from services.alerts.api import register_api
from services.alerts.delivery.webhook import WebhookChannel
from services.alerts.metrics import AlertsMetrics
from services.alerts.service import AlertHandler
from services.alerts.settings import AlertsSettings


def faust_config(settings: AlertsSettings) -> dict[str, Any]:
    kafka = settings.kafka
    return {
        "id": settings.consumer_group,
        "broker": [f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
        "broker_session_timeout": kafka.session_timeout_s,
        "broker_heartbeat_interval": kafka.heartbeat_interval_s,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "topic_partitions": kafka.topic_partitions,
        "store": "memory://",
        "web_enabled": True,
        "web_bind": settings.api_host,
        "web_port": settings.api_port,
        "web_host": settings.api_host,
        "datadir": f"/tmp/ksp-faust-{settings.worker_id}",
    }


class DeliveryService(Service):
    def __init__(self, handler: AlertHandler, client: httpx.AsyncClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handler = handler
        self.client = client

    @Service.task
    async def _deliver(self) -> None:
        await self.handler.deliver_forever()

    async def on_stop(self) -> None:
        await self.client.aclose()


def build_app(settings: AlertsSettings, registry: CollectorRegistry | None = None) -> faust.App:
    registry = registry or CollectorRegistry()
    metrics = AlertsMetrics(registry)
    app = faust.App(**faust_config(settings))
    alerts_topic = app.topic(settings.topics.alerts, key_serializer="raw", value_serializer="raw")
    client = httpx.AsyncClient(timeout=settings.delivery_timeout_s)
    secret = settings.webhook_secret.get_secret_value().encode()
    channels = [WebhookChannel(client, url, secret, attempts=settings.delivery_attempts,
                               backoff_s=settings.delivery_backoff_s) for url in settings.webhook_urls]
    handler = AlertHandler(channels=channels, publish=alerts_topic.send, metrics=metrics)
    register_agents(app, settings, handler.handle)
    app.service(DeliveryService(handler, client, loop=None))  # type: ignore[arg-type]
    register_api(app, handler, registry)
    return app
