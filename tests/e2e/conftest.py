"""The three services as real processes against the embedded broker and ClickHouse."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from deploy.embedded.launcher import KSP, ServiceStack, wait_until
from deploy.embedded.process import ManagedProcess, free_port
from schemas.scored import ScoredEvent
from services.common.clickhouse import connect
from services.common.kafka import security_config
from services.common.settings import ClickHouseSettings, KafkaSettings

__all__ = ["KSP", "Pipeline", "WebhookReceiver", "wait_until"]


@dataclass
class WebhookReceiver:
    """A real HTTP server that records what the alerts service delivers."""

    received: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.bodies.append(body)
                receiver.received.append(json.loads(body))
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    def stop(self) -> None:
        self.server.shutdown()


@dataclass
class Pipeline:
    ingest_url: str
    alerts_url: str
    scoring_url: str
    clickhouse: ClickHouseSettings
    webhook: WebhookReceiver
    processes: dict[str, ManagedProcess]

    def query(self, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
        client = connect(self.clickhouse)
        try:
            return list(client.query(sql, parameters=parameters).result_rows)
        finally:
            client.close()


@pytest.fixture(scope="session")
def pipeline(kafka, clickhouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:  # type: ignore[no-untyped-def]
    webhook = WebhookReceiver().start()
    # The deployment's default topics and groups: the e2e tests are the session's main pipeline.
    stack = ServiceStack(kafka.bootstrap_servers, clickhouse.url, tmp_path_factory.mktemp("pipeline-logs"),
                         env={"KSP_WEBHOOK_URLS": json.dumps([webhook.url]), "KSP_WEBHOOK_SECRET": "test-secret"})
    for name in ("ingest", "scoring", "alerts"):
        stack.add(name)
    try:
        stack.start(timeout=60)
        yield Pipeline(ingest_url=stack["ingest"].url, alerts_url=stack["alerts"].url,
                       scoring_url=stack["scoring"].url, clickhouse=ClickHouseSettings(url=clickhouse.url),
                       webhook=webhook, processes=stack.processes)
    finally:
        stack.stop()
        webhook.stop()


def listed_cases(alerts_url: str) -> dict[str, tuple[str, int]]:
    """case id -> (state, number of events), as an alerts worker's API lists them."""
    cases = httpx.get(f"{alerts_url}/v1/alerts", params={"limit": 10_000}, timeout=5).json()["cases"]
    return {c["case_id"]: (c["state"], c["events"]) for c in cases}


def produce_scored(kafka: KafkaSettings, topic: str, events: Iterable[ScoredEvent]) -> None:
    """Publish scored events as the scoring service does (keyed by event id), acknowledged."""
    producer = KafkaProducer(**security_config(kafka), acks="all", linger_ms=5)
    try:
        for s in events:
            producer.send(topic, key=s.event_id.encode(), value=s.model_dump_json().encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)
