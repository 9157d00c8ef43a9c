"""Ingest: events/s through the HTTP API into the raw topic (acks=all), with request latency.

Load generator: `wrk` (C, one thread, Lua script) when installed, because every cycle the load
generator spends is taken from the two cores the service runs on; else an asyncio/aiohttp
generator. Which one ran is recorded in the results."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from bench.infra import (
    Infra,
    create_topics,
    encoded_events,
    percentile,
    progress,
    unique,
    wait_http,
)
from bench.procs import cpu_seconds, descendants, loadavg
from deploy.embedded.process import free_port

ID_MARKER = "@@EVENT_ID@@"
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("%(body)s", "rb")
wrk.body = f:read("*all")
f:close()
-- a body with the marker gets a new event id per request, so keys spread over the partitions
local s, e = string.find(wrk.body, "%(marker)s", 1, true)
if s then
  local prefix, suffix, n = string.sub(wrk.body, 1, s - 1), string.sub(wrk.body, e + 1), 0
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, prefix .. "%(run)s-" .. n .. suffix)
  end
end
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"max_us": %%d, "connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, "timeouts": %%d, '
    .. '"non_2xx": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status))
end
"""


def start_ingest(inf: Infra, topic: str, workers: int = 2, name: str = "ingest") -> str:
    port = free_port()
    proc = inf.service(name, "ingest", KSP_PORT=str(port), KSP_WORKERS=str(workers),
                       KSP_TOPICS__RAW=topic, KSP_RATE_LIMIT_ENABLED="false")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/readyz", 60, proc)
    return url


def _wrk(url: str, body_file: Path, connections: int, seconds: float, workdir: Path) -> dict[str, Any]:
    script = workdir / f"{body_file.stem}.lua"
    script.write_text(LUA % {"body": str(body_file), "marker": ID_MARKER, "run": unique("bench-single")})
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                          "-s", str(script), f"{url}/v1/feedback"],
                         capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-800:]} {out.stderr[-800:]}")
    data = json.loads(line[len("WRKJSON "):])
    ok = data["requests"] - data["non_2xx"]
    return {"requests": data["requests"], "ok_requests": ok, "seconds": data["duration_us"] / 1e6,
            "p50_ms": data["p50_us"] / 1000, "p99_ms": data["p99_us"] / 1000, "max_ms": data["max_us"] / 1000,
            "errors": {k: data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx")}}


async def _aiohttp_load(url: str, body: bytes, connections: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    prefix, marker, suffix = body.partition(ID_MARKER.encode())
    run, sent = unique("bench-single").encode(), 0

    def next_body() -> bytes:
        nonlocal sent
        sent += 1
        return prefix + run + b"-" + str(sent).encode() + suffix if marker else body

    latencies: list[float] = []
    codes: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            async with session.post(f"{url}/v1/feedback", data=next_body(),
                                    headers={"content-type": "application/json"}) as resp:
                await resp.read()
                codes[str(resp.status)] = codes.get(str(resp.status), 0) + 1
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    return {"requests": len(latencies), "ok_requests": ok, "seconds": elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "max_ms": max(latencies, default=0) * 1000, "errors": {"non_2xx": len(latencies) - ok},
            "status_codes": codes}


def load(url: str, body: bytes, connections: int, seconds: float, workdir: Path, name: str) -> dict[str, Any]:
    body_file = workdir / f"{name}.json"
    body_file.write_bytes(body)
    if shutil.which("wrk"):
        result = _wrk(url, body_file, connections, seconds, workdir)
        result["generator"] = "wrk (1 thread, Lua)"
    else:
        result = asyncio.run(_aiohttp_load(url, body, connections, seconds))
        result["generator"] = "aiohttp (asyncio)"
    result["connections"] = connections
    return result


def _per_process_cpu(pid: int) -> dict[int, float]:
    return {p: cpu_seconds(p, tree=False) for p in descendants(pid)}


def _per_process_delta(pid: int, before: dict[int, float]) -> list[float]:
    """CPU seconds each ingest process used (largest first): shows how evenly uvicorn spreads the load."""
    now = _per_process_cpu(pid)
    return sorted((round(v - before.get(p, 0.0), 2) for p, v in now.items()), reverse=True)


def _busiest_share(cpu: list[float]) -> float:
    """1/workers: evenly spread; 1.0: one worker did everything (uvicorn keeps a connection on its worker)."""
    return max(cpu) / sum(cpu) if cpu and sum(cpu) > 0 else 0.0


def run_once(inf: Infra, seconds: float, batch_connections: int = 8, single_connections: int = 32,
             batch_size: int = 1000, workers: int = 2) -> dict[str, Any]:
    topic = unique("ingest-raw")
    create_topics(inf.bootstrap, [topic])
    url = start_ingest(inf, topic, workers)
    try:
        events = [orjson.loads(e) for e in encoded_events(batch_size, seed=11, source="bench-ingest")]
        batch_body = orjson.dumps(events)
        # a new event id per request, as real traffic has (the same body would put every
        # event on one partition, where the producer's batches coalesce best)
        single_body = orjson.dumps({**events[0], "event_id": ID_MARKER})
        # warm-up: both workers, producer connections, code paths
        load(url, batch_body, 2, 1, inf.workdir, "warm-batch")
        load(url, single_body, 4, 1, inf.workdir, "warm-single")
        progress(f"  ingest: batched ({batch_size} events/request, {batch_connections} connections, {seconds:.0f} s)")
        pid = inf.children["ingest"].pid
        if pid is None:
            raise RuntimeError("the ingest service is not running")
        cpu0 = cpu_seconds(pid)
        per0 = _per_process_cpu(pid)
        batched = load(url, batch_body, batch_connections, seconds, inf.workdir, "batch")
        batched["ingest_cpu_us_per_event"] = (cpu_seconds(pid) - cpu0) / max(1, batched["ok_requests"] * batch_size) * 1e6
        batched["ingest_cpu_s_per_process"] = _per_process_delta(pid, per0)
        batched["busiest_process_cpu_share"] = _busiest_share(batched["ingest_cpu_s_per_process"])
        batched["batch_size"] = batch_size
        batched["events_s"] = batched["ok_requests"] * batch_size / batched["seconds"]
        progress(f"  ingest: single events ({single_connections} connections, {seconds:.0f} s)")
        cpu0 = cpu_seconds(pid)
        per0 = _per_process_cpu(pid)
        single = load(url, single_body, single_connections, seconds, inf.workdir, "single")
        single["ingest_cpu_us_per_request"] = (cpu_seconds(pid) - cpu0) / max(1, single["ok_requests"]) * 1e6
        single["ingest_cpu_s_per_process"] = _per_process_delta(pid, per0)
        single["busiest_process_cpu_share"] = _busiest_share(single["ingest_cpu_s_per_process"])
        single["requests_s"] = single["ok_requests"] / single["seconds"]
        return {"loadavg_after": loadavg(), "workers": workers, "batched": batched, "single": single, "body_bytes": {"batch": len(batch_body), "single": len(single_body)}}
    finally:
        inf.stop_child("ingest", grace=15)
