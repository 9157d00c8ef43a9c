"""One agent batch: process each raw message, publish scored events, dead letters and the
batch's partial minute aggregates, and wait for the broker's acknowledgements (`delivery`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from faust.types import EventT

from schemas.scored import ScoredEvent
from services.common.delivery import Backoff, Output, Send, deliver
from services.scoring.aggregates import aggregate_key_bytes, fold
from services.scoring.metrics import ScoringMetrics
from services.scoring.processing import DeadLetter, RawMessage, process_message
from services.scoring.scorers.event import TextAnalyser

ACK_WARN_S = 30.0
DEFAULT_BACKOFF = Backoff()


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
        ack_warn_s: float = ACK_WARN_S,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.analyse_text = analyse_text
        self.send_scored = send_scored
        self.send_dead_letter = send_dead_letter
        self.send_aggregate = send_aggregate
        self.raw_topic = raw_topic
        self.metrics = metrics
        self.ack_warn_s = ack_warn_s
        self.backoff = backoff

    async def handle(self, events: Sequence[EventT]) -> None:
        """Score a batch and return once every output is acknowledged by the broker."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        results = [self._process(event, now) for event in events]
        outputs = [self._output(result) for result in results] + self._aggregate_outputs(results)
        await deliver(outputs, warn_after_s=self.ack_warn_s, backoff=self.backoff,
                      on_resend=self.metrics.output_resends.inc)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _aggregate_outputs(self, results: list[ScoredEvent | DeadLetter]) -> list[Output]:
        """The batch's partial minute aggregates, one message per minute x scope."""
        if self.send_aggregate is None:
            return []
        scored = [r for r in results if isinstance(r, ScoredEvent)]
        return [Output(self.send_aggregate, aggregate_key_bytes(a), a.model_dump_json().encode(), aggregate=True)
                for a in fold(scored)]

    def _process(self, event: EventT, now: datetime) -> ScoredEvent | DeadLetter:
        message = event.message
        raw = RawMessage(message.value, message.key, message.partition, message.offset,
                         int(message.timestamp * 1000))
        return process_message(raw, analyse_text=self.analyse_text, now=now)

    def _output(self, result: ScoredEvent | DeadLetter) -> Output:
        if isinstance(result, DeadLetter):
            self.metrics.dead_letters.labels(result.reason.value).inc()
            return Output(self.send_dead_letter, result.message.key, result.message.value or b"",
                          result.headers(self.raw_topic))
        self.metrics.events_scored.labels(result.event.touchpoint.value).inc()
        return Output(self.send_scored, result.event_id.encode(), result.model_dump_json().encode())
