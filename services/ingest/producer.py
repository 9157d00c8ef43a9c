"""The Kafka side of ingest: an aiokafka producer that answers only after acks=all.

`produce(events)` sends every event of a request without waiting in between, then waits
for all delivery futures together: the HTTP answer 202 means every event is acknowledged
by all in-sync replicas. Key = `event_id` (so retries of one event land on one partition
and downstream can dedup), value = the event's JSON with `event_id` set, record timestamp
= the time ingest received it. On timeout or broker errors the request gets 503 with
`Retry-After`; some of its events may still be delivered later, which is why clients retry
with the same event ids (at-least-once; the scoring sink stores each event id once).

The partition of each event is Kafka's default (murmur2 of the key, computed for the whole
request at once by `services.common.partitioner`); the records go into per-partition batches
shared by all requests (`batcher.py`), one delivery future per batch instead of per event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import TypeAdapter

from schemas.feedback import FeedbackEvent
from services.common.kafka import aiokafka_config
from services.common.partitioner import partition_for, partitions_for
from services.ingest.batcher import PartitionBatcher, wait_all
from services.ingest.metrics import IngestMetrics
from services.ingest.problems import Problem
from services.ingest.settings import IngestSettings

log = logging.getLogger("ksp.ingest.producer")
_EVENT = TypeAdapter(FeedbackEvent)


_TO_JSON = _EVENT.serializer.to_json  # without TypeAdapter.dump_json's per-call argument handling


def encode(event: FeedbackEvent) -> bytes:
    """Compact JSON of the event (pydantic-core's serializer: same output as orjson of
    `model_dump(mode="json")`, without the intermediate dict)."""
    return _TO_JSON(event)


class IngestProducer:
    def __init__(self, settings: IngestSettings, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topic = settings.topics.raw
        self._producer: AIOKafkaProducer | None = None
        self._starter: asyncio.Task[None] | None = None
        self._inflight = 0
        self._ready: tuple[float, bool] = (0.0, False)
        # Set after any broker failure: refresh the topic's metadata before producing again.
        self._suspect = True
        self._batchers: dict[int, PartitionBatcher] = {}

    def _config(self) -> dict[str, Any]:
        s = self.settings
        return {
            **aiokafka_config(s.kafka),
            "client_id": "ksp-ingest",
            "acks": "all",
            "enable_idempotence": s.kafka_idempotent_producer,
            "linger_ms": s.producer_linger_ms,
            "max_batch_size": s.producer_max_batch_bytes,
            "max_request_size": s.producer_max_request_bytes,
            "compression_type": None if s.producer_compression == "none" else s.producer_compression,
        }

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Start now if the broker is there, else keep trying in the background."""
        if not await self._try_start():
            self._starter = asyncio.create_task(self._start_loop())

    async def _try_start(self) -> bool:
        producer = AIOKafkaProducer(**self._config())
        try:
            await producer.start()
        except (KafkaConnectionError, OSError) as exc:
            log.warning("kafka not reachable yet: %s", exc.__class__.__name__)
            await producer.stop()
            return False
        except KafkaError as exc:
            hint = (" The broker may not support idempotent producers (the embedded one does not):"
                    " set KSP_KAFKA_IDEMPOTENT_PRODUCER=false." if self.settings.kafka_idempotent_producer else "")
            log.error("kafka producer could not start: %r.%s", exc, hint)
            await producer.stop()
            return False
        self._producer = producer
        log.info("producer started", extra={"topic": self.topic})
        return True

    async def _start_loop(self) -> None:
        delay = 0.5
        while not await self._try_start():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def stop(self) -> None:
        """Flush what is buffered (bounded by the graceful-shutdown time) and close."""
        if self._starter is not None:
            self._starter.cancel()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            self._batchers.clear()
            try:
                await asyncio.wait_for(producer.stop(), self.settings.graceful_shutdown_s)
            except (TimeoutError, KafkaError) as exc:
                log.error("producer did not flush before shutdown: %r", exc)

    def _unavailable(self, detail: str, slug: str = "broker-unavailable") -> Problem:
        return Problem(slug, detail, headers={"Retry-After": str(self.settings.retry_after_s)})

    def _mark_down(self) -> None:
        self._ready = (time.monotonic(), False)
        self._suspect = True

    async def _refresh_topic(self, producer: AIOKafkaProducer) -> None:
        """Request the topic's metadata (creating it where the broker auto-creates topics).

        After a broker restart, the producer still holds the old metadata and would send at
        once; the embedded broker (Tansu) acknowledges produce requests for a topic it does
        not have (yet) and drops the records, so ingest asks for the topic first.
        """
        try:
            producer.client.add_topic(self.topic)
            ok = await asyncio.wait_for(producer.client.force_metadata_update(),
                                        self.settings.readiness_timeout_s)
        except (TimeoutError, KafkaError, OSError):
            ok = False
        if not ok or self.topic not in producer.client.cluster.topics():
            self._mark_down()
            raise self._unavailable("Kafka is not reachable.")
        self._suspect = False

    async def produce(self, events: list[FeedbackEvent]) -> None:
        """Send all events, then wait for all acknowledgements; Problem(503) on failure."""
        producer = self._producer
        if producer is None:
            raise self._unavailable("The Kafka producer is not connected yet.")
        if self._suspect:
            await self._refresh_topic(producer)
        n = len(events)
        if self._inflight + n > self.settings.max_inflight_events:
            raise self._unavailable("Too many events are awaiting Kafka's acknowledgement.", "buffer-full")
        self._inflight += n
        self.metrics.inflight_events.inc(n)
        started = time.perf_counter()
        try:
            futures = self._send(producer, events)
            await wait_all(futures, self.settings.produce_timeout_s)
            failed = [f.exception() for f in futures if f.exception() is not None]
            if failed:
                raise failed[0]  # type: ignore[misc]
        except TimeoutError:
            self._mark_down()
            raise self._unavailable(f"Kafka did not acknowledge within {self.settings.produce_timeout_s:g} s.") from None
        except KafkaError as exc:
            self._mark_down()
            log.warning("produce failed: %r", exc)
            raise self._unavailable(f"Kafka refused the events ({exc.__class__.__name__}).") from None
        finally:
            self._inflight -= n
            self.metrics.inflight_events.dec(n)
        self.metrics.produce_seconds.observe(time.perf_counter() - started)

    def _send(self, producer: AIOKafkaProducer, events: list[FeedbackEvent]) -> list[asyncio.Future[Any]]:
        """Hand every event to the producer; returns the delivery futures (one per batch)."""
        ts = int(time.time() * 1000)
        records = [(e.key, encode(e)) for e in events]
        known = producer.client.cluster.partitions_for_topic(self.topic)
        if not known:  # refreshed just before; should the topic vanish, aiokafka waits for metadata
            return [asyncio.ensure_future(producer.send_and_wait(self.topic, v, key=k, timestamp_ms=ts))
                    for k, v in records]
        ids = sorted(known)
        if len(records) == 1:  # the single-event request, without grouping
            return self._batcher(producer, ids[partition_for(records[0][0], len(ids))]).add(records, ts)
        futures: list[asyncio.Future[Any]] = []
        for index, group in group_by_partition(records, partitions_for([k for k, _ in records], len(ids))).items():
            futures += self._batcher(producer, ids[index]).add(group, ts)
        return futures

    def _batcher(self, producer: AIOKafkaProducer, partition: int) -> PartitionBatcher:
        batcher = self._batchers.get(partition)
        if batcher is None:
            batcher = self._batchers[partition] = PartitionBatcher(producer, self.topic, partition)
        return batcher

    async def ready(self) -> bool:
        """Broker reachable: producer started and cluster metadata fetchable (cached briefly)."""
        checked, ok = self._ready
        now = time.monotonic()
        if now - checked < self.settings.readiness_cache_s:
            return ok
        producer = self._producer
        ok = False
        if producer is not None:
            try:
                md = await asyncio.wait_for(producer.client.fetch_all_metadata(),
                                            self.settings.readiness_timeout_s)
                ok = bool(md.brokers())
            except (TimeoutError, KafkaError, OSError):
                ok = False
        self._ready = (time.monotonic(), ok)
        if not ok:
            self._suspect = True
        return ok


def group_by_partition(records: list[tuple[bytes, bytes]], partitions: list[int]) -> dict[int, list[tuple[bytes, bytes]]]:
    """Records grouped by their partition index, each group in request order."""
    groups: dict[int, list[tuple[bytes, bytes]]] = {}
    for record, p in zip(records, partitions, strict=True):
        groups.setdefault(p, []).append(record)
    return groups

