"""End to end at a fixed offered load: broker + ClickHouse + ingest + scoring + alerts, all as
processes on the embedded defaults (like `ksp run`), a webhook receiver run here.

Load: `rate` events/s for `seconds`, posted as batches of `batch` events every batch/rate s
(aiohttp, bounded concurrency; missed slots are sent late, never dropped). Beside it, one churn
probe every `probe_every_s` s: a single event of a new customer (NPS 1, "Ich kündige ...") whose
event id is remembered with the time its POST was sent; the webhook receiver records when the
alert naming that event id (evidence.example_event_ids) arrives.

Measured: p50/p99/max of inserted_at - accepted_at from ClickHouse (accepted_at = Kafka timestamp
set by ingest, inserted_at = row default now64(3)), POST sent -> alert received per probe, the
alerts service's own `ksp_alerts_detection_latency_seconds` histogram, peak RSS per process tree.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from bench.infra import (
    Infra,
    create_topics,
    make_events,
    median,
    percentile,
    progress,
    unique,
)
from bench.procs import PeakSampler, cpu_seconds
from deploy.embedded.process import free_port

PROBE_RE = re.compile(r"bench-probe-[0-9a-f-]{36}")


class Webhook:
    def __init__(self) -> None:
        self.received: dict[str, float] = {}  # example event id -> time.time() of receipt
        self.alerts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.alerts += 1
                # evidence.example_event_ids names the probe; searched anywhere in the body, so that a
                # change of the alert's shape does not hide a delivery
                for event_id in PROBE_RE.findall(raw.decode("utf-8", "replace")):
                    receiver.received.setdefault(event_id, at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _offer(url: str, events: list[dict[str, Any]], rate: float, seconds: float, batch: int,
                 probe_every_s: float, source: str) -> dict[str, Any]:
    import aiohttp

    probes: dict[str, float] = {}
    latencies: list[float] = []
    failures = 0
    sent = 0
    sem = asyncio.Semaphore(64)
    interval = batch / rate
    slots = int(seconds / interval)
    tasks: list[asyncio.Task[None]] = []

    async def post(session: aiohttp.ClientSession, body: bytes, n: int) -> None:
        nonlocal failures, sent
        async with sem:
            t0 = time.perf_counter()
            try:
                async with session.post(f"{url}/v1/feedback", data=body,
                                        headers={"content-type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status == 202:
                        sent += n
                    else:
                        failures += 1
            except aiohttp.ClientError:
                failures += 1
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        start = time.monotonic()
        next_probe = 1.0
        for k in range(slots):
            due = start + k * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = events[(k * batch) % len(events):(k * batch) % len(events) + batch]
            chunk = [{**e, "event_id": str(uuid.uuid4()), "occurred_at": datetime.now(UTC).isoformat()} for e in chunk]
            tasks.append(asyncio.create_task(post(session, orjson.dumps(chunk), len(chunk))))
            if k * interval >= next_probe:
                next_probe += probe_every_s
                event_id = f"bench-probe-{uuid.uuid4()}"
                probe = {"event_id": event_id, "occurred_at": datetime.now(UTC).isoformat(), "touchpoint": "store",
                         "source": source, "unit": "berlin-mitte", "segment": "private",
                         "customer_id": f"probe-{uuid.uuid4().hex[:12]}", "responses": [{"metric": "nps", "value": 1}],
                         "comment": {"text": "Ich kündige meinen Vertrag, der Service war eine Katastrophe."}}
                probes[event_id] = time.time()
                tasks.append(asyncio.create_task(post(session, orjson.dumps(probe), 1)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    return {"probes": probes, "accepted_events": sent, "failed_requests": failures, "offer_seconds": elapsed,
            "achieved_events_s": sent / elapsed, "request_p50_ms": percentile(latencies, 50) * 1000,
            "request_p99_ms": percentile(latencies, 99) * 1000}


def _histogram(text: str, name: str) -> dict[str, Any]:
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
        elif line.startswith(f"{name}_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            count = float(line.rsplit(" ", 1)[1])

    def upper(q: float) -> float | None:
        for le, c in buckets:
            if count and c >= q * count:
                return le
        return None

    return {"count": count, "mean_s": total / count if count else None, "p50_le_s": upper(0.5),
            "p99_le_s": upper(0.99), "buckets": {str(le): c for le, c in buckets}}


def _warm_up(url: str, clickhouse_url: str, source: str, timeout: float = 60.0) -> None:
    """Post a few events and wait until they are in ClickHouse: every consumer group (scoring, sink,
    alerts) has joined and every code path is warm before the measured load starts."""
    import httpx

    from services.common.clickhouse import connect
    from services.common.settings import ClickHouseSettings

    events = make_events(20, seed=5, source=source)
    httpx.post(f"{url}/v1/feedback", content=orjson.dumps(events), headers={"content-type": "application/json"},
               timeout=30).raise_for_status()
    client = connect(ClickHouseSettings(url=clickhouse_url))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if int(client.query("SELECT count() FROM kundensprechen.feedback_events WHERE source={s:String}",
                                parameters={"s": source}).result_rows[0][0]) >= len(events):
                time.sleep(2)  # the alerts group, which nothing above waits for
                return
            time.sleep(0.2)
        raise TimeoutError(f"warm-up events not in ClickHouse after {timeout:.0f} s")
    finally:
        client.close()


def run_once(inf: Infra, rate: float, seconds: float, batch: int = 20, probe_every_s: float = 2.0,
             settle_timeout: float = 90.0) -> dict[str, Any]:
    import httpx

    from schemas.topics import Topics
    from services.common.clickhouse import connect
    from services.common.settings import ClickHouseSettings

    create_topics(inf.bootstrap, Topics().all())
    hook = Webhook()
    common = {"KSP_WEBHOOK_URLS": json.dumps([hook.url])}
    progress("  e2e: starting ingest, scoring, alerts")
    services = {name: inf.start_service(name, **common) for name in ("ingest", "scoring", "alerts")}
    urls = {name: service.url for name, service in services.items()}
    sampler = None
    try:
        services["ingest"].wait_ready(60)
        services["scoring"].wait_ready(60)
        alerts_error = None
        try:
            services["alerts"].wait_ready(60)
        except (RuntimeError, TimeoutError) as exc:  # still measure ingest -> ClickHouse without alerts
            alerts_error = f"alerts service not ready: {exc}; log tail: " + services["alerts"].log_tail(600)
            progress(f"  e2e: {alerts_error[:200]}")
            inf.stop_child("alerts", grace=2)
        source = unique("e2e").replace(".", "-")
        _warm_up(urls["ingest"], inf.clickhouse_url, source + "-warmup")
        sampler = PeakSampler(inf.pids()).start()
        events = make_events(2000, seed=41, source=source)
        progress(f"  e2e: offering {rate:g} events/s for {seconds:g} s (+ a churn probe every {probe_every_s:g} s)")
        pids = inf.pids()
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        offer_started_ms = int(time.time() * 1000)
        offer = asyncio.run(_offer(urls["ingest"], events, rate, seconds, batch,
                                   probe_every_s, source))
        probes = offer.pop("probes")
        expected = offer["accepted_events"]
        client = connect(ClickHouseSettings(url=inf.clickhouse_url))
        try:
            deadline = time.monotonic() + settle_timeout
            stored = 0
            while time.monotonic() < deadline:
                stored = int(client.query("SELECT count() FROM kundensprechen.feedback_events WHERE source={s:String}",
                                          parameters={"s": source}).result_rows[0][0])
                if stored >= expected and (alerts_error or all(p in hook.received for p in probes)):
                    break
                time.sleep(0.5)
            windows = client.query(
                "SELECT intDiv(toUnixTimestamp64Milli(accepted_at) - {t0:Int64}, 5000) AS w, count(), "
                "quantileExact(0.5)(toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(accepted_at)), "
                "quantileExact(0.99)(toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(accepted_at)) "
                "FROM kundensprechen.feedback_events WHERE source={s:String} GROUP BY w ORDER BY w",
                parameters={"s": source, "t0": offer_started_ms}).result_rows
            row = client.query(
                "SELECT quantileExact(0.5)(d), quantileExact(0.99)(d), max(d), count() FROM (SELECT "
                "toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(accepted_at) AS d "
                "FROM kundensprechen.feedback_events WHERE source={s:String})", parameters={"s": source}).result_rows[0]
        finally:
            client.close()
        try:
            metrics = httpx.get(f"{urls['alerts']}/metrics", timeout=5).text
        except httpx.HTTPError as exc:
            metrics = f"unavailable: {exc!r}"
        alert_latencies = [hook.received[p] - sent for p, sent in probes.items() if p in hook.received]
        cpu_used = {name: round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in pids.items()}
        peaks = sampler.stop()
        sampler = None
        return {
            "offered_events_s": rate, "seconds": seconds, "batch_per_request": batch, **offer,
            "stored_rows": stored, "all_stored": stored >= expected,
            "accepted_to_inserted_ms": {"p50": float(row[0]), "p99": float(row[1]), "max": float(row[2]),
                                        "rows": int(row[3])},
            "accepted_to_inserted_by_5s_window_ms": [
                {"from_s": int(w) * 5, "rows": int(c), "p50": float(p50), "p99": float(p99)} for w, c, p50, p99 in windows],
            "alert_probes": {"sent": len(probes), "delivered": len(alert_latencies),
                             "p50_s": percentile(alert_latencies, 50) if alert_latencies else None,
                             "p99_s": percentile(alert_latencies, 99) if alert_latencies else None,
                             "max_s": max(alert_latencies) if alert_latencies else None,
                             "median_s": median(alert_latencies) if alert_latencies else None},
            "alerts_detection_latency_histogram": _histogram(metrics, "ksp_alerts_detection_latency_seconds"),
            "alerts_metrics_excerpt": ([ln for ln in metrics.splitlines() if "detection_latency" in ln or "deliver" in ln][:30]
                                       or metrics[:600]),
            "webhook_alerts_received": hook.alerts,
            "alerts_error": alerts_error,
            "peak_rss": peaks,
            # CPU each process tree used from the start of the load until everything was stored, and per event
            "cpu_s": cpu_used,
            "cpu_us_per_event": {name: round(v / max(1, expected) * 1e6, 1) for name, v in cpu_used.items()},
        }
    finally:
        if sampler is not None:
            sampler.stop()
        for name in ("ingest", "scoring", "alerts"):
            inf.stop_child(name, grace=15)
        hook.stop()
