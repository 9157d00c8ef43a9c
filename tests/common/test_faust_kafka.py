"""Faust's consumers take their fetch wait from the settings (Faust itself fixes it at 1.5 s);
its producers partition keys exactly as Kafka's default partitioner does, only faster."""

from __future__ import annotations

import asyncio

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.transport import by_url
from hypothesis import given
from hypothesis import strategies as st

from services.common.faust_kafka import (
    TunedTransport,
    apply_fetch_wait,
    broker_urls,
    kafka_partitioner,
)


def test_services_use_the_tuned_transport() -> None:
    urls = broker_urls("a:9092,b:9092")
    assert urls == ["ksp-kafka://a:9092", "ksp-kafka://b:9092"]
    assert by_url(urls[0]) is TunedTransport


def test_the_consumer_is_created_with_the_configured_fetch_wait(kafka) -> None:  # type: ignore[no-untyped-def]
    async def create() -> object:
        app = apply_fetch_wait(faust.App("ksp-fetch-wait-test", broker=broker_urls(kafka.bootstrap_servers)), 42)
        thread = app.consumer._thread  # the consumer's worker thread, as Faust builds it
        return thread._create_consumer(asyncio.get_running_loop())

    consumer = asyncio.run(create())
    assert consumer._fetch_max_wait_ms == 42  # type: ignore[attr-defined]


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_the_producer_partitioner_is_kafkas_default(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    assert kafka_partitioner(key, all_partitions, all_partitions) == DefaultPartitioner()(
        key, all_partitions, all_partitions)


def test_unkeyed_messages_go_to_an_available_partition() -> None:
    assert kafka_partitioner(None, [0, 1, 2, 3], [2]) == 2
    assert kafka_partitioner(None, [0, 1, 2, 3], []) in {0, 1, 2, 3}


def test_the_scoring_producer_uses_the_fast_partitioner() -> None:
    from services.scoring.app import faust_config
    from services.scoring.settings import ScoringSettings

    assert faust_config(ScoringSettings())["producer_partitioner"] is kafka_partitioner
