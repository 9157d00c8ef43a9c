"""ClickHouse sink: rows/s from a pre-filled scored topic into `feedback_events`.

A real scoring worker runs with an empty raw topic, so only its sink works. Rows are counted by
polling ClickHouse (`count()` of this run's `source`); rate = rows stored after the first poll
that saw rows / time from that poll to the poll that saw all (steady state; batches of 2,000)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from bench.infra import (
    Infra,
    create_topics,
    encoded_events,
    produce_all,
    progress,
    unique,
)
from bench.procs import cpu_seconds


def scored_values(n: int, source: str) -> tuple[list[bytes], list[bytes]]:
    from services.scoring.processing import RawMessage, process_message
    from services.scoring.text import analyse

    now = datetime.now(UTC)
    ts = int(time.time() * 1000)
    keys, values = [], []
    for i, raw in enumerate(encoded_events(n, seed=31, source=source)):
        scored = process_message(RawMessage(raw, None, i % 4, i // 4, ts), analyse_text=analyse, now=now)
        keys.append(scored.event_id.encode())  # type: ignore[union-attr]
        values.append(scored.model_dump_json().encode())  # type: ignore[union-attr]
    return keys, values


def _count(client: Any, source: str) -> int:
    return int(client.query("SELECT count() FROM kundensprechen.feedback_events WHERE source = {s:String}",
                            parameters={"s": source}).result_rows[0][0])


def run_once(inf: Infra, n: int, timeout: float) -> dict[str, Any]:
    from services.common.clickhouse import connect
    from services.common.settings import ClickHouseSettings

    source = unique("sink").replace(".", "-")
    raw, scored, dead = unique("raw-empty"), unique("scored-sink"), unique("dead-sink")
    create_topics(inf.bootstrap, [raw, scored, dead])
    keys, values = scored_values(n, source)
    asyncio.run(produce_all(inf.bootstrap, scored, values, keys))
    progress(f"  sink: scoring worker with an empty raw topic stores {n} scored events")
    client = connect(ClickHouseSettings(url=inf.clickhouse_url))
    group = unique("sink-worker").replace(".", "-")
    started = time.monotonic()
    sink = inf.start_service("sink", "scoring", KSP_TOPICS__RAW=raw, KSP_TOPICS__SCORED=scored,
                             KSP_TOPICS__DEADLETTER=dead, KSP_CONSUMER_GROUP=group, KSP_SINK_GROUP=f"{group}-sink",
                             KSP_WORKER_ID=group)
    proc = sink.process
    try:
        sink.wait_ready(60, "/healthz")
        first_t, first_rows, rows, last_t, cpu0 = None, 0, 0, None, 0.0
        deadline = time.monotonic() + timeout
        while rows < n and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = _count(client, source)
            now = time.monotonic()
            if rows and first_t is None:
                first_t, first_rows, cpu0 = now, rows, cpu_seconds(proc.pid or 0)
            last_t = now
        out: dict[str, Any] = {"events": n, "rows": rows, "complete": rows >= n}
        if first_t is not None and last_t is not None and last_t > first_t:
            out["rows_s"] = (rows - first_rows) / (last_t - first_t)
            out["rows_s_incl_startup"] = rows / (last_t - started)
            out["startup_s"] = first_t - started
            if rows > first_rows:
                out["worker_cpu_us_per_row"] = (cpu_seconds(proc.pid or 0) - cpu0) / (rows - first_rows) * 1e6
        else:  # everything arrived in one poll: only the rate including start-up is known
            out["rows_s"] = rows / ((last_t or time.monotonic()) - started)
            out["rows_s_incl_startup"] = out["rows_s"]
        return out
    finally:
        client.close()
        inf.stop_child("sink", grace=10)
