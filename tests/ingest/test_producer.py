"""The ingest producer against the real broker: concurrent requests share record batches, yet
every event arrives once, on the partition Kafka's default partitioner gives its key, in
request order within the partition, with the request answered only after the acks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from schemas.feedback import FeedbackEvent
from services.common.partitioner import partition_for
from services.ingest.metrics import create_metrics
from services.ingest.producer import IngestProducer

from .conftest import read_topic

pytestmark = pytest.mark.kafka


def _events(request: int, n: int) -> list[FeedbackEvent]:
    return [FeedbackEvent.model_validate({
        "event_id": f"req{request}-ev{i:04d}", "occurred_at": datetime.now(UTC), "touchpoint": "web",
        "source": "shop", "responses": [{"metric": "nps", "value": i % 11}]}) for i in range(n)]


async def _produce_concurrently(producer: IngestProducer, requests: list[list[FeedbackEvent]]) -> None:
    await producer.start()
    try:
        await asyncio.gather(*(producer.produce(events) for events in requests))
    finally:
        await producer.stop()


@pytest.mark.parametrize("batch_bytes", [1024 * 1024, 1024])  # 1 KiB: every batch fills after a few records
def test_concurrent_requests_arrive_once_each_on_kafkas_partition_in_order(settings_for, kafka, batch_bytes):
    settings = settings_for(producer_max_batch_bytes=batch_bytes)
    requests = [_events(r, n) for r, n in enumerate([1, 7, 300, 40, 1, 120])]
    producer = IngestProducer(settings, create_metrics(CollectorRegistry()))

    asyncio.run(_produce_concurrently(producer, requests))

    expected = {e.event_id for events in requests for e in events}
    records = read_topic(kafka.bootstrap_servers, settings.topics.raw, len(expected))
    keys = [r.key.decode() for r in records]
    assert sorted(keys) == sorted(expected)  # each once
    assert all(r.partition == partition_for(r.key, 4) for r in records)
    for r in records:
        assert FeedbackEvent.model_validate_json(r.value).event_id == r.key.decode()
    for request in range(len(requests)):
        for partition in range(4):
            ours = [r.key.decode() for r in sorted(records, key=lambda r: r.offset)
                    if r.partition == partition and r.key.decode().startswith(f"req{request}-")]
            assert ours == sorted(ours)  # request order kept within a partition
