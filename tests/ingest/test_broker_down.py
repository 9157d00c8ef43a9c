"""Kafka unavailable -> 503 with Retry-After and /readyz 503; a new broker on the port -> recovery.

Uses its own EmbeddedKafka (the session broker stays untouched).
"""

from __future__ import annotations

import time

import pytest

from deploy.embedded.kafka import EmbeddedKafka
from deploy.embedded.process import free_port
from services.ingest.problems import problem_type

from .conftest import AUTH, event, make_settings, read_topic, running_client


def _wait_for_202(client, deadline_s: float = 30.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + deadline_s
    while True:
        r = client.post("/v1/feedback", json=event(), headers=AUTH)
        if r.status_code == 202:
            return r.json()["event_ids"][0]
        assert r.status_code == 503, r.text
        assert time.monotonic() < deadline, "ingest did not recover"
        time.sleep(0.3)


def _assert_503(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/feedback", json=event(), headers=AUTH)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "2"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == problem_type("broker-unavailable")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "2"


@pytest.mark.kafka
def test_broker_down_503_then_recovery(tmp_path):
    port = free_port()
    settings = make_settings(f"127.0.0.1:{port}", produce_timeout_s=1.5, retry_after_s=2,
                             readiness_cache_s=0, readiness_timeout_s=0.5)
    with running_client(settings) as client:
        # 1. No broker at start-up: the app serves, answers 503, keeps trying to connect.
        _assert_503(client)
        broker = EmbeddedKafka(port=port, log_path=tmp_path / "b1.log").start()
        try:
            _wait_for_202(client)
            assert client.get("/readyz").status_code == 200
            # 2. The broker goes away while serving.
            broker.stop()
            _assert_503(client)
        finally:
            broker.stop()
        # 3. A new broker on the same port: ingest recovers without a restart.
        broker = EmbeddedKafka(port=port, log_path=tmp_path / "b2.log").start()
        try:
            second = _wait_for_202(client)
            assert client.get("/readyz").status_code == 200
            records = read_topic(broker.bootstrap_servers, settings.topics.raw, 1, timeout=10)
            assert second.encode() in {r.key for r in records}
        finally:
            broker.stop()
