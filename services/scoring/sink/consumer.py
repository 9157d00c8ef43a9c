"""The sink's consumer loop: poll, batch, store, dead-letter, then commit.

Nothing is committed that is neither stored nor delivered to the dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from pydantic import ValidationError

from schemas.scored import ScoredEvent
from services.scoring.metrics import ScoringMetrics
from services.scoring.processing import DeadLetter, DeadLetterReason, RawMessage
from services.scoring.sink.batch import Batch
from services.scoring.sink.errors import Refusal
from services.scoring.sink.rows import to_row
from services.scoring.sink.writer import ClickHouseWriter, WriteResult

log = logging.getLogger("ksp.scoring.sink")

Send = Callable[..., Awaitable[Any]]  # send(key=, value=, headers=) -> awaitable delivery
UNREADABLE = "UNREADABLE"


class ClickHouseSink:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        writer: ClickHouseWriter,
        topic: str,
        metrics: ScoringMetrics,
        send_dead_letter: Send,
        *,
        max_rows: int,
        max_age_s: float,
    ) -> None:
        self.consumer = consumer
        self.writer = writer
        self.topic = topic
        self.metrics = metrics
        self.send_dead_letter = send_dead_letter
        self.batch = Batch(max_rows=max_rows, max_age_s=max_age_s)
        self._stopping = False
        self._lock = asyncio.Lock()

    def listener(self) -> ConsumerRebalanceListener:
        sink = self

        class FlushOnRevoke(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                await sink.flush()

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                log.info("sink assigned %s", sorted(tp.partition for tp in assigned))

        return FlushOnRevoke()

    async def run(self) -> None:
        while not self._stopping:
            records = await self.consumer.getmany(timeout_ms=100, max_records=self.batch.max_rows)
            now = time.monotonic()
            for messages in records.values():
                for message in messages:
                    self._add(message, now)
            if self.batch.ready(time.monotonic()):
                await self.flush()

    def _add(self, record: ConsumerRecord[Any, Any], now: float) -> None:
        message = RawMessage(record.value, record.key, record.partition, record.offset, record.timestamp)
        try:
            scored = ScoredEvent.model_validate_json(message.value or b"")
        except ValidationError as exc:
            # Only the scoring agent writes this topic; an unreadable message is a bug upstream.
            log.error("unreadable scored message at %s/%d: %s", message.partition, message.offset, exc)
            self.metrics.sink_unreadable.inc()
            self.batch.add_dead_letter(DeadLetter(message, DeadLetterReason.invalid_event, str(exc)), now)
            return
        self.batch.add(message, scored.event_id, to_row(scored, message.partition, message.offset), now)

    async def flush(self) -> None:
        async with self._lock:
            if self.batch.messages == 0:
                return
            started = time.perf_counter()
            result = await asyncio.to_thread(self.writer.write, self.batch.rows, lambda: self._stopping)
            letters = self._letters(result)
            await self._deliver(letters)
            await self.consumer.commit(
                {TopicPartition(self.topic, p): OffsetAndMetadata(o, "") for p, o in self.batch.commit_offsets().items()}
            )
            self.metrics.observe_sink_batch(self.batch.messages, result.inserted, time.perf_counter() - started,
                                            dead_lettered=len(letters))
            self.batch.clear()

    def _letters(self, result: WriteResult) -> list[tuple[DeadLetter, str]]:
        """Each dead letter of this batch with its error name (for headers and the metric)."""
        unreadable = [(letter, UNREADABLE) for letter in self.batch.dead_letters]
        return unreadable + [(self._refused(event_id, why), why.error) for event_id, why in result.refused]

    def _refused(self, event_id: str, why: Refusal) -> DeadLetter:
        return DeadLetter(self.batch.sources[event_id], DeadLetterReason.clickhouse_refused, why.detail)

    async def _deliver(self, letters: list[tuple[DeadLetter, str]]) -> None:
        """Send the dead letters and wait for the broker's acknowledgement: only then may the
        batch's offsets be committed. Retried with backoff; a retry may repeat some letters."""
        delay = self.writer.backoff_initial_s
        while letters:
            try:
                deliveries = [await self._send(letter, error) for letter, error in letters]
                await asyncio.gather(*deliveries)
                break
            except Exception as exc:  # broker unavailable: nothing is committed meanwhile
                if self._stopping:
                    raise
                log.warning("dead-letter delivery failed, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.writer.backoff_max_s)
        for _, error in letters:
            self.metrics.sink_dead_letters.labels(error).inc()

    async def _send(self, letter: DeadLetter, error: str) -> Awaitable[Any]:
        headers = letter.headers(self.topic)
        if letter.reason is DeadLetterReason.clickhouse_refused:
            headers.append(("ksp-clickhouse-error", error.encode()))
        return await self.send_dead_letter(key=letter.message.key, value=letter.message.value or b"",
                                           headers=headers)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Flush what is batched, giving ClickHouse `grace_s` to answer, then stop polling.

        What cannot be stored in time stays uncommitted and is consumed again after restart."""
        timer = asyncio.get_running_loop().call_later(grace_s, self._request_stop)
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - any failure: the batch stays uncommitted
            log.warning("sink stopped with an unstored batch (will be re-consumed): %s", exc)
        finally:
            timer.cancel()
            self._request_stop()

    def _request_stop(self) -> None:
        self._stopping = True
