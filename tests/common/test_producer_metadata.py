"""A producer keeps sending to every topic it produces to, also after it first sends to a topic
created after it started (real embedded broker).

aiokafka then narrows its metadata refreshes to the topics it was asked about: a batch still
lingering for a topic it knew only from its bootstrap metadata loses its leader and fails when
it expires. That is how the alerts worker lost a churn alert: its alert and notify records
lingered while its first case event went to the cases topic, created after the producer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.common.kafka import aiokafka_config, ensure_topics, track_topics
from services.common.settings import KafkaSettings

LINGER_MS = 200
EXPIRES_MS = 4000  # a batch without a leader fails after the request timeout


async def send_while_a_new_topic_appears(kafka: KafkaSettings, *, track: bool) -> object:
    """Send to `known` (lingering), then to `new`, created after the producer started;
    returns what the `known` send ends with."""
    run = uuid.uuid4().hex[:8]
    known, new = f"test.metadata.{run}.known", f"test.metadata.{run}.new"
    ensure_topics(kafka, [known])
    config = aiokafka_config(kafka) | {"request_timeout_ms": EXPIRES_MS}
    producer = AIOKafkaProducer(**config, enable_idempotence=False, linger_ms=LINGER_MS)
    await producer.start()
    try:
        ensure_topics(kafka, [new])
        if track:
            await track_topics(producer.client, [known, new])
        lingering = await producer.send(known, b"lingers")
        await producer.send_and_wait(new, b"first record of a topic the bootstrap did not know")
        try:
            return await asyncio.wait_for(lingering, EXPIRES_MS / 1000 * 3)
        except KafkaError as exc:
            return exc
    finally:
        await producer.stop()


@pytest.fixture
def kafka_settings(kafka) -> KafkaSettings:  # type: ignore[no-untyped-def]
    return KafkaSettings(bootstrap_servers=kafka.bootstrap_servers)


def test_untracked_a_lingering_batch_loses_its_topic_and_fails(kafka_settings: KafkaSettings) -> None:
    """Why `track_topics` exists; if aiokafka fixes this, this test fails and the helper can go."""
    outcome = asyncio.run(send_while_a_new_topic_appears(kafka_settings, track=False))
    assert isinstance(outcome, KafkaError), outcome


def test_tracked_topics_stay_in_the_metadata_and_the_batch_is_acknowledged(kafka_settings: KafkaSettings) -> None:
    outcome = asyncio.run(send_while_a_new_topic_appears(kafka_settings, track=True))
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.offset == 0  # type: ignore[attr-defined]
