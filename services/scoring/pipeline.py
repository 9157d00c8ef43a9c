"""One agent batch: process each raw message, publish scored events and dead letters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from faust.types import EventT

from schemas.scored import ScoredEvent
from services.scoring.aggregates import aggregate_key_bytes, fold
from services.scoring.metrics import ScoringMetrics
from services.scoring.processing import DeadLetter, RawMessage, process_message
from services.scoring.scorers.event import TextAnalyser

Send = Callable[..., Awaitable[Any]]


class ScoringPipeline:
    def __init__(
        self,
        *,
        analyse_text: TextAnalyser,
        send_scored: Send,
        send_dead_letter: Send,
        send_aggregate: Send | None,
        raw_topic: str,
        metrics: ScoringMetrics,
    ) -> None:
        self.analyse_text = analyse_text
        self.send_scored = send_scored
        self.send_dead_letter = send_dead_letter
        self.send_aggregate = send_aggregate
        self.raw_topic = raw_topic
        self.metrics = metrics

    async def handle(self, events: Sequence[EventT]) -> None:
        """Score a batch and wait until every output is acknowledged by the broker."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        results = [self._process(event, now) for event in events]
        deliveries = [await self._publish(result) for result in results]
        if self.send_aggregate is not None:
            scored = [r for r in results if isinstance(r, ScoredEvent)]
            for aggregate in fold(scored):
                deliveries.append(await self.send_aggregate(
                    key=aggregate_key_bytes(aggregate), value=aggregate.model_dump_json().encode()))
        await asyncio.gather(*deliveries)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _process(self, event: EventT, now: datetime) -> ScoredEvent | DeadLetter:
        message = event.message
        raw = RawMessage(message.value, message.key, message.partition, message.offset,
                         int(message.timestamp * 1000))
        return process_message(raw, analyse_text=self.analyse_text, now=now)

    async def _publish(self, result: ScoredEvent | DeadLetter) -> Awaitable[Any]:
        if isinstance(result, DeadLetter):
            self.metrics.dead_letters.labels(result.reason.value).inc()
            return await self.send_dead_letter(
                key=result.message.key, value=result.message.value or b"",
                headers=result.headers(self.raw_topic),
            )
        self.metrics.events_scored.labels(result.event.touchpoint.value).inc()
        return await self.send_scored(key=result.event_id.encode(), value=result.model_dump_json().encode())
