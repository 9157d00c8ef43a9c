"""`python -m services.ingest.main` (serve) with 2 workers: serves, reports both workers' metrics on
every scrape, then shuts down cleanly on SIGTERM.

Each worker listens on a socket of its own (SO_REUSEPORT), so the kernel spreads connections
over the workers instead of the first one awake accepting them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from deploy.embedded.process import free_port
from tests.e2e.conftest import wait_until
from tests.metrics import samples

from .conftest import event, read_topic

pytestmark = pytest.mark.kafka


def test_serve_two_workers_and_graceful_shutdown(kafka, tmp_path):
    port = free_port()
    topic = f"test.serve.{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "KSP_PROFILE": "dev",
        "KSP_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KSP_KAFKA_IDEMPOTENT_PRODUCER": "false",
        "KSP_AUTH_ENABLED": "false",
        "KSP_PORT": str(port),
        "KSP_WORKERS": "2",
        "KSP_TOPICS__RAW": topic,
    }
    log = open(tmp_path / "ingest.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "services.ingest.main"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=os.getcwd(), start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "ingest.log").read_text()
            time.sleep(0.2)
        wait_until(lambda: listening_sockets(port) == 2, 30, "a listening socket per worker")
        ids = []
        for _ in range(20):  # a connection each: the kernel spreads them over both workers
            r = httpx.post(f"{url}/v1/feedback", json=[event(), event(touchpoint="app")])
            assert r.status_code == 202, r.text
            ids += r.json()["event_ids"]
        for _ in range(6):  # whichever worker answers the scrape, it reports both workers' counts
            assert accepted_events(httpx.get(f"{url}/metrics").text) == {"web": 20.0, "app": 20.0}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    records = read_topic(kafka.bootstrap_servers, topic, len(ids))
    assert sorted(r.key.decode() for r in records) == sorted(ids)


def accepted_events(exposition: str) -> dict[str, float]:
    """ksp_ingest_events_accepted_total by touchpoint, from a Prometheus text exposition."""
    return {labels["touchpoint"]: value for labels, value in samples(exposition, "ksp_ingest_events_accepted_total")}


def listening_sockets(port: int) -> int:
    """TCP sockets in LISTEN state (0A) on `port`, from /proc/net/tcp."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")
