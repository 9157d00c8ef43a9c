"""Scoring worker throughput (sink off) against a plain aiokafka loop and the raw consume rate.

The raw topic is pre-filled with N valid events; then one consumer at a time reads all of them:
(a) a bare aiokafka consumer (no processing), (b) the plain loop (`bench.plainloop`, its own
process), (c) one real scoring worker (`ksp scoring`, KSP_SINK_ENABLED=false). Each of (b) and
(c) writes to its own scored, dead-letter and aggregates topics, counted by a consumer with manual assignment (end offsets
are wrong on Tansu). Rate = events / (last scored event seen - first scored event seen), i.e.
steady state without the consumer-group join; the rate including the start-up is kept too.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench.infra import (
    Infra,
    count_topic,
    create_topics,
    encoded_events,
    produce_all,
    progress,
    unique,
)
from bench.procs import cpu_seconds, loadavg


def _drain(inf: Infra, topic: str, n: int, timeout: float, started: float, pid: int | None) -> dict[str, Any]:
    cpu: list[float] = []
    count, first, last, first_count = asyncio.run(count_topic(
        inf.bootstrap, topic, n, timeout, on_first=lambda: cpu.append(cpu_seconds(pid) if pid else 0.0)))
    out: dict[str, Any] = {"scored": count, "complete": count >= n}
    steady = first is not None and last is not None and last > first and count > first_count
    out["steady_state"] = steady
    if steady:
        assert first is not None and last is not None
        out["events_s"] = (count - first_count) / (last - first)
        if pid and cpu:
            # CPU the process spent from the first output to the last: robust to other load on the machine
            out["cpu_us_per_event"] = (cpu_seconds(pid) - cpu[0]) / (count - first_count) * 1e6
    if last is not None:
        out["events_s_incl_startup"] = count / (last - started)
        out["startup_s"] = (first or last) - started
        if not steady:  # everything arrived in one poll (tiny runs): only the rate with start-up is known
            out["events_s"] = out["events_s_incl_startup"]
    else:
        out["events_s"] = 0.0
    return out


def prefill(inf: Infra, n: int, source: str = "bench-scoring") -> tuple[str, float]:
    raw = unique("raw")
    create_topics(inf.bootstrap, [raw])
    values = encoded_events(n, seed=23, source=source)
    seconds = asyncio.run(produce_all(inf.bootstrap, raw, values, timestamp_ms=int(time.time() * 1000)))
    return raw, seconds


def run_once(inf: Infra, n: int, timeout: float) -> dict[str, Any]:
    raw, fill_s = prefill(inf, n)
    out: dict[str, Any] = {"events": n, "prefill_events_s": n / fill_s}

    started = time.perf_counter()
    count, *_ = asyncio.run(count_topic(inf.bootstrap, raw, n, timeout))
    out["raw_consume"] = {"consumed": count, "events_s": count / (time.perf_counter() - started)}

    progress(f"  scoring: plain aiokafka loop over {n} events")
    scored, dead, aggregates = unique("scored-plain"), unique("dead-plain"), unique("aggregates-plain")
    create_topics(inf.bootstrap, [scored, dead, aggregates])
    started = time.monotonic()
    proc = inf.spawn("plainloop", [sys.executable, "-m", "bench.plainloop", inf.bootstrap, raw, scored, dead,
                                   unique("plain-group"), aggregates], inf.env())
    try:
        out["plain_loop"] = _drain(inf, scored, n, timeout, started, proc.pid)
    finally:
        inf.stop_child("plainloop", grace=5)

    progress(f"  scoring: one Faust scoring worker (sink off) over {n} events")
    scored, dead, aggregates = unique("scored-faust"), unique("dead-faust"), unique("aggregates-faust")
    create_topics(inf.bootstrap, [scored, dead, aggregates])  # Tansu drops sends to unknown topics
    group = unique("scoring-group").replace(".", "-")
    started = time.monotonic()
    worker = inf.start_service("scoring", KSP_SINK_ENABLED="false", KSP_TOPICS__RAW=raw,
                               KSP_TOPICS__SCORED=scored, KSP_TOPICS__DEADLETTER=dead, KSP_TOPICS__AGGREGATES=aggregates,
                               KSP_CONSUMER_GROUP=group, KSP_WORKER_ID=group)
    try:
        worker.wait_ready(60, "/healthz")
        out["faust_worker"] = _drain(inf, scored, n, timeout, started, worker.process.pid)
    finally:
        inf.stop_child("scoring", grace=10)

    faust, plain, raw_rate = (out["faust_worker"]["events_s"], out["plain_loop"]["events_s"],
                              out["raw_consume"]["events_s"])
    out["ratio_to_plain_loop"] = faust / plain if plain else 0.0
    out["ratio_to_raw_consume"] = faust / raw_rate if raw_rate else 0.0
    cpu_f, cpu_p = out["faust_worker"].get("cpu_us_per_event"), out["plain_loop"].get("cpu_us_per_event")
    if cpu_f and cpu_p:
        out["cpu_ratio_plain_to_faust"] = cpu_p / cpu_f  # same sense as the rate ratio: >= 1/3 is the target
    out["loadavg_after"] = loadavg()
    return out
