"""The sink's consumer loop: poll, batch, store, then commit. Nothing is committed unstored."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from schemas.scored import ScoredEvent
from services.scoring.metrics import ScoringMetrics
from services.scoring.sink.batch import Batch
from services.scoring.sink.rows import to_row
from services.scoring.sink.writer import ClickHouseWriter

log = logging.getLogger("ksp.scoring.sink")


class ClickHouseSink:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        writer: ClickHouseWriter,
        topic: str,
        metrics: ScoringMetrics,
        *,
        max_rows: int,
        max_age_s: float,
    ) -> None:
        self.consumer = consumer
        self.writer = writer
        self.topic = topic
        self.metrics = metrics
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
            for tp, messages in records.items():
                for message in messages:
                    self._add(message.value, tp.partition, message.offset, now)
            if self.batch.ready(time.monotonic()):
                await self.flush()

    def _add(self, value: bytes | None, partition: int, offset: int, now: float) -> None:
        try:
            scored = ScoredEvent.model_validate_json(value or b"")
        except ValidationError as exc:
            # Only the scoring agent writes this topic; an unreadable message is a bug upstream.
            log.error("unreadable scored message at %s/%d: %s", partition, offset, exc)
            self.metrics.sink_unreadable.inc()
            self.batch.add(None, None, partition, offset, now)
            return
        self.batch.add(scored.event_id, to_row(scored, partition, offset), partition, offset, now)

    async def flush(self) -> None:
        async with self._lock:
            if self.batch.messages == 0:
                return
            started = time.perf_counter()
            inserted = await asyncio.to_thread(
                self.writer.write, self.batch.rows, self.batch.dedup_token(self.topic), lambda: self._stopping
            )
            await self.consumer.commit(
                {TopicPartition(self.topic, p): OffsetAndMetadata(o, "") for p, o in self.batch.commit_offsets().items()}
            )
            self.metrics.observe_sink_batch(self.batch.messages, inserted, time.perf_counter() - started)
            self.batch.clear()

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
