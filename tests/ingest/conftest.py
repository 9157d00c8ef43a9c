"""Helpers for the ingest tests: settings, a TestClient with a live producer, topic reads."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from deploy.embedded.kafka import EmbeddedKafka
from deploy.embedded.process import free_port
from services.ingest.app import create_app
from services.ingest.auth import hash_key
from services.ingest.settings import IngestSettings

KEY_ALL = "key-all-0123456789"
KEY_WEB = "key-web-0123456789"
KEY_SLOW = "key-slow-0123456789"

API_KEYS = [
    {"name": "all", "sha256": hash_key(KEY_ALL)},
    {"name": "web-shop", "sha256": hash_key(KEY_WEB), "touchpoints": ["web"], "sources": ["shop"]},
    {"name": "slow", "sha256": hash_key(KEY_SLOW), "rate_limit_events_per_s": 2, "rate_limit_burst": 3},
]
AUTH = {"authorization": f"Bearer {KEY_ALL}"}


def make_settings(bootstrap: str, **overrides: Any) -> IngestSettings:
    base: dict[str, Any] = {
        "profile": "dev",
        "kafka": {"bootstrap_servers": bootstrap, "request_timeout_s": 10},
        "kafka_idempotent_producer": False,  # aiokafka's idempotent producer fails on Tansu
        "topics": {"raw": f"test.ingest.raw.{uuid.uuid4().hex[:10]}"},
        "api_keys": API_KEYS,
        "produce_timeout_s": 5,
    }
    base.update(overrides)
    return IngestSettings(**base)


def event(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "occurred_at": datetime.now(UTC).isoformat(),
        "touchpoint": "web",
        "source": "shop",
        "responses": [{"metric": "nps", "value": 9}],
    }
    doc.update(fields)
    return doc


@pytest.fixture
def settings_for(kafka: EmbeddedKafka) -> Callable[..., IngestSettings]:
    return lambda **overrides: make_settings(kafka.bootstrap_servers, **overrides)


@contextmanager
def running_client(settings: IngestSettings, registry: CollectorRegistry | None = None) -> Iterator[TestClient]:
    app = create_app(settings, registry or CollectorRegistry())
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


@pytest.fixture
def ingest(settings_for: Callable[..., IngestSettings]) -> Iterator[TestClient]:
    with running_client(settings_for()) as client:
        yield client


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 15.0,
               settle: float = 0.5) -> list[Any]:
    """All records of `topic` (manual assignment, no group join), once `expected` are there."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=200)
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        quiet_until = None
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
            if len(records) >= expected:
                quiet_until = quiet_until or time.monotonic() + settle
                if time.monotonic() >= quiet_until:
                    break
        return records
    finally:
        consumer.close()


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                          access_log=False, loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
