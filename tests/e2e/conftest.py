"""The three services as real processes against the embedded broker and ClickHouse."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from deploy.embedded.process import ManagedProcess, free_port
from schemas.topics import Topics
from services.common.clickhouse import connect, migrate
from services.common.kafka import ensure_topics
from services.common.settings import ClickHouseSettings, KafkaSettings

KSP = [sys.executable, "-m", "services.cli"]


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


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               processes: dict[str, ManagedProcess] | None = None) -> Any:
    """The condition's first truthy value; on time-out, fail with the processes' log tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    tails = "".join(p._log_tail() for p in (processes or {}).values())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tails}")


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
    logs = tmp_path_factory.mktemp("pipeline-logs")
    ch_settings = ClickHouseSettings(url=clickhouse.url)
    migrate(ch_settings)
    ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers), Topics().all())
    webhook = WebhookReceiver().start()
    ports = {"ingest": free_port(), "alerts": free_port(), "scoring": free_port()}
    env = {
        **os.environ,
        "KSP_PROFILE": "dev",
        "KSP_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KSP_CLICKHOUSE__URL": clickhouse.url,
        "KSP_WEBHOOK_URLS": json.dumps([webhook.url]),
        "KSP_WEBHOOK_SECRET": "test-secret",
        "KSP_PORT": str(ports["ingest"]),
        "KSP_API_PORT": str(ports["alerts"]),
        "KSP_WEB_PORT": str(ports["scoring"]),
        "KSP_LOG__JSON_FORMAT": "true",
    }
    processes = {name: ManagedProcess(name, [*KSP, name], env=env, log_path=logs / f"{name}.log")
                 for name in ("ingest", "scoring", "alerts")}
    for process in processes.values():
        process.start()
    result = Pipeline(
        ingest_url=f"http://127.0.0.1:{ports['ingest']}",
        alerts_url=f"http://127.0.0.1:{ports['alerts']}",
        scoring_url=f"http://127.0.0.1:{ports['scoring']}",
        clickhouse=ch_settings, webhook=webhook, processes=processes,
    )
    try:
        for name, url in [("ingest", result.ingest_url), ("scoring", result.scoring_url), ("alerts", result.alerts_url)]:
            processes[name].wait_ready(lambda url=url: _ready(f"{url}/readyz"), timeout=60)
        yield result
    finally:
        for process in processes.values():
            process.stop(grace=15)
        webhook.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
