"""Alert handling with side effects at the edge: publish state changes, deliver, park failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.alert import Alert
from schemas.scored import ScoredEvent
from services.alerts.flows import AlertState, evaluate
from services.alerts.metrics import AlertsMetrics

log = logging.getLogger("ksp.alerts")


class Channel(Protocol):
    name: str

    async def deliver(self, alert: Alert) -> None: ...


class AlertHandler:
    def __init__(self, *, channels: Sequence[Channel], publish: Callable[..., Awaitable[Any]],
                 metrics: AlertsMetrics) -> None:
        self.state = AlertState()
        self.channels = list(channels)
        self.publish = publish
        self.metrics = metrics
        self.outbox: asyncio.Queue[tuple[Alert, datetime]] = asyncio.Queue()
        self.parked: list[tuple[str, Alert, str]] = []
        self.delivered: list[Alert] = []

    async def handle(self, values: Sequence[bytes]) -> None:
        now = datetime.now(UTC)
        for value in values:
            self.metrics.events.inc()
            try:
                scored = ScoredEvent.model_validate_json(value)
            except ValidationError as exc:
                log.error("unreadable scored event skipped: %s", exc)
                continue
            for alert in evaluate(self.state, scored, now):
                await self.publish(key=alert.fingerprint.encode(), value=alert.model_dump_json().encode())
                self.metrics.alerts.labels(alert.kind.value, alert.severity.value, alert.status.value).inc()
                self.outbox.put_nowait((alert, scored.accepted_at))

    async def deliver_forever(self) -> None:
        while True:
            alert, accepted_at = await self.outbox.get()
            await asyncio.gather(*(self._deliver(channel, alert, accepted_at) for channel in self.channels))

    async def _deliver(self, channel: Channel, alert: Alert, accepted_at: datetime) -> None:
        try:
            await channel.deliver(alert)
        except Exception as exc:  # parked, visible in the API, never dropped silently
            log.error("delivery of %s via %s parked: %s", alert.alert_id, channel.name, exc)
            self.parked.append((channel.name, alert, str(exc)))
            self.metrics.deliveries.labels(channel.name, "parked").inc()
            return
        self.delivered.append(alert)
        self.metrics.deliveries.labels(channel.name, "delivered").inc()
        self.metrics.detection_latency.observe((datetime.now(UTC) - accepted_at).total_seconds())
