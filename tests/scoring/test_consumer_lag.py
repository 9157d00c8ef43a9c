"""Consumer lag = high watermark (from fetch responses) - committed offset, per partition.

On the real embedded broker, for both kinds of consumer the scoring worker runs: a plain
aiokafka consumer (the sink) and a Faust agent. Produce N while the consumer does not get
through them: lag == N; let it consume and commit: lag -> 0.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from services.common.faust_kafka import base_config, new_app
from services.common.kafka import aiokafka_config, ensure_topics
from services.common.settings import KafkaSettings
from services.scoring.lag import (
    LagReporter,
    Offsets,
    Snapshot,
    aiokafka_snapshot,
    faust_snapshot,
    lag,
)
from services.scoring.metrics import ScoringMetrics

offsets = st.integers(0, 10**12)


@given(offsets, offsets)
def test_lag_is_what_the_group_has_not_committed(highwater: int, committed: int) -> None:
    assert lag(Offsets(highwater, committed)) == max(0, highwater - committed)


@given(st.one_of(st.none(), offsets))
def test_lag_is_unknown_until_both_ends_are_known(known: int | None) -> None:
    assert lag(Offsets(None, known)) is None and lag(Offsets(known, None)) is None
    assert lag(Offsets(known, -1)) is None  # Kafka's "no committed offset"


def test_the_gauge_follows_each_group_and_forgets_revoked_partitions() -> None:
    registry = CollectorRegistry()
    snapshots: list[Snapshot] = [{("raw", 0): Offsets(10, 4), ("raw", 1): Offsets(3, 3), ("raw", 2): Offsets(5, None)},
                                 {("raw", 1): Offsets(9, 3)}]
    reporter = LagReporter(ScoringMetrics(registry), {"ksp-scoring": lambda: _value(snapshots.pop(0))})

    def gauge(partition: int) -> float | None:
        labels = {"group": "ksp-scoring", "topic": "raw", "partition": str(partition)}
        return registry.get_sample_value("ksp_scoring_consumer_lag_messages", labels)

    asyncio.run(reporter.update())
    assert (gauge(0), gauge(1), gauge(2)) == (6, 0, None)
    asyncio.run(reporter.update())  # partition 0 went to another worker
    assert (gauge(0), gauge(1)) == (None, 6)


async def _value(snapshot: Snapshot) -> Snapshot:
    return snapshot


# --------------------------------------------------------------------------- real broker


async def _produce(settings: KafkaSettings, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(**aiokafka_config(settings), enable_idempotence=False)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, b"x", partition=0) for _ in range(n)])
    finally:
        await producer.stop()


async def _eventually(read: Callable[[], Awaitable[Any]], expected: Any, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {value!r}, expected {expected!r}"
        await asyncio.sleep(0.1)


def _topic(kafka: Any) -> tuple[KafkaSettings, str]:
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_partitions=1)
    topic = f"test.lag.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    return settings, topic


def test_sink_consumer_lag_reads_true(kafka) -> None:  # type: ignore[no-untyped-def]
    settings, topic = _topic(kafka)
    tp = TopicPartition(topic, 0)

    async def scenario() -> None:
        consumer = AIOKafkaConsumer(topic, **aiokafka_config(settings), group_id=f"{topic}-sink",
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    session_timeout_ms=6000, heartbeat_interval_ms=1000, fetch_max_wait_ms=50)
        await consumer.start()

        async def lag_now() -> int | None:
            return lag((await aiokafka_snapshot(consumer)).get((topic, 0), Offsets(None, None)))

        async def consume_and_commit(n: int) -> None:
            taken = 0
            while taken < n:
                taken += sum(len(m) for m in (await consumer.getmany(timeout_ms=500)).values())
            await consumer.commit()

        try:
            await _produce(settings, topic, 5)
            await consume_and_commit(5)
            await _eventually(lag_now, 0)
            await _produce(settings, topic, 7)  # the consumer does not take them yet
            await _eventually(lag_now, 7)  # its fetcher has seen them: high watermark 12, committed 5
            assert consumer.highwater(tp) == 12 and await consumer.committed(tp) == 5
            await consume_and_commit(7)
            await _eventually(lag_now, 0)
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_faust_agent_lag_reads_true(kafka, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings, topic = _topic(kafka)
    group = f"{topic}-agent"
    settings.session_timeout_s, settings.heartbeat_interval_s = 6, 1

    async def scenario() -> None:
        config = base_config(settings, app_id=group, worker_id=group) | {
            "web_enabled": False, "broker_commit_interval": 0.2, "datadir": str(tmp_path)}
        app = new_app(config, settings)
        gate, handled = asyncio.Event(), [0]

        @app.agent(app.topic(topic, value_serializer="raw"), name="gated")
        async def gated(stream: faust.StreamT[bytes]) -> None:
            async for _ in stream:
                await gate.wait()  # held: the event stays unacknowledged, so uncommitted
                handled[0] += 1

        async def lag_now() -> int | None:
            return lag(faust_snapshot(app.consumer, {topic}).get((topic, 0), Offsets(None, None)))

        async def count() -> int:
            return handled[0]

        await app.start()
        try:
            gate.set()
            await _produce(settings, topic, 5)
            await _eventually(count, 5, timeout=60)  # includes the group join
            await _eventually(lag_now, 0)
            gate.clear()
            await _produce(settings, topic, 7)
            await _eventually(lag_now, 7)
            gate.set()
            await _eventually(count, 12)
            await _eventually(lag_now, 0)
        finally:
            await app.stop()

    asyncio.run(scenario())
