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
from services.ingest.batcher import wait_all
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


def test_records_arriving_while_a_batch_awaits_its_ack_leave_together_in_the_next(settings_for, kafka):
    """Per partition, one batch at aiokafka at a time: requests arriving meanwhile (here one an
    event-loop turn, far quicker than the broker's answer) share the next batch, instead of the
    first of them leaving alone and the rest in a third."""
    settings = settings_for()
    producer = IngestProducer(settings, create_metrics(CollectorRegistry()))
    ids = [f"same-partition-{i}" for i in range(200)]
    ids = [i for i in ids if partition_for(i.encode(), 4) == 0][:5]
    requests = [[e.model_copy(update={"event_id": i})] for i, e in zip(ids, _events(0, len(ids)), strict=True)]
    handed: list[int] = []

    async def run() -> None:
        await producer.start()
        await producer.produce(requests[0])  # connected, metadata known: now steady state
        kafka_producer = producer._producer
        assert kafka_producer is not None
        send_batch = kafka_producer.send_batch

        async def counting_send_batch(builder, topic, *, partition):  # type: ignore[no-untyped-def]
            handed.append(builder.record_count())
            return await send_batch(builder, topic, partition=partition)

        kafka_producer.send_batch = counting_send_batch  # type: ignore[method-assign]
        try:
            tasks = []
            for events in requests[1:]:
                tasks.append(asyncio.create_task(producer.produce(events)))
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)
        finally:
            await producer.stop()

    asyncio.run(run())
    assert handed == [1, 3]
    records = read_topic(kafka.bootstrap_servers, settings.topics.raw, len(ids))
    assert [r.key.decode() for r in sorted(records, key=lambda r: r.offset)] == ids


def test_waiting_for_delivery_times_out_without_cancelling_the_shared_futures():
    """A request's wait ends when all its batches are delivered, or with TimeoutError; the batch
    futures are shared with other requests, so a timed-out wait leaves them pending."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        slow, quick = loop.create_future(), loop.create_future()
        loop.call_later(0.01, quick.set_result, None)
        with pytest.raises(TimeoutError):
            await wait_all([quick, slow], timeout=0.05)
        assert quick.done() and not slow.done()
        loop.call_later(0.01, slow.set_result, None)
        await wait_all([quick, slow], timeout=1.0)
        assert slow.done()

    asyncio.run(run())
