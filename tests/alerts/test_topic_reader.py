"""Replaying a whole topic at start-up (cases, state) on the real embedded broker: every record
written before the replay comes back, also when the broker reports end offsets that fall short
of the last record. Tansu answers ListOffsets(latest) with the base offset of the last record
batch + 1 (100 records sent in one batch: end offset 1); the reader still gets them all because
a fetch returns whole batches and it reads until its position passes the reported end."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.alerts.cases.log import TopicReader
from services.common.kafka import aiokafka_config, ensure_topics
from services.common.settings import KafkaSettings


class ValueReader(TopicReader[bytes]):
    def decode_record(self, record: Any) -> bytes:
        return bytes(record.value)


async def produce_in_batches(settings: KafkaSettings, topic: str, n: int) -> None:
    """`n` records sent at once with a linger, so that they share record batches."""
    producer = AIOKafkaProducer(**aiokafka_config(settings), enable_idempotence=False, linger_ms=50)
    await producer.start()
    try:
        sends = [await producer.send(topic, f"r{i}".encode(), key=f"k{i % 7}".encode()) for i in range(n)]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def replay(settings: KafkaSettings, topic: str) -> tuple[list[bytes], int]:
    reader = ValueReader(settings, topic)
    await reader.start(30)
    try:
        reported = sum((await reader.consumer.end_offsets(reader._partitions)).values())
        return await reader.replay(30), reported
    finally:
        await reader.stop()


@pytest.mark.parametrize("configs", [None, {"cleanup.policy": "compact"}], ids=["delete", "compact"])
def test_a_replay_returns_every_record_written_before_it_in_batches(kafka, configs) -> None:  # type: ignore[no-untyped-def]
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_partitions=2)
    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic], configs=configs)

    async def scenario() -> tuple[list[bytes], int]:
        await produce_in_batches(settings, topic, 300)
        return await replay(settings, topic)

    replayed, reported_end = asyncio.run(scenario())

    assert sorted(replayed) == sorted(f"r{i}".encode() for i in range(300)), (
        f"{len(replayed)} of 300 replayed; the broker reported end offsets summing to {reported_end}")


def test_a_replay_of_an_empty_topic_returns_nothing(kafka) -> None:  # type: ignore[no-untyped-def]
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_partitions=2)
    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])

    replayed, reported_end = asyncio.run(replay(settings, topic))

    assert replayed == [] and reported_end == 0
