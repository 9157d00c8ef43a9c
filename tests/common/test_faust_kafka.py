"""Faust's consumers take their fetch wait from the settings (Faust itself fixes it at 1.5 s)."""

from __future__ import annotations

import asyncio

import faust
from faust.transport import by_url

from services.common.faust_kafka import TunedTransport, apply_fetch_wait, broker_urls


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
