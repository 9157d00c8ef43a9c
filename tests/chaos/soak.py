"""Soak: the whole pipeline under moderate load for a long time, with memory sampling.

    .venv/bin/python -m tests.chaos.soak --minutes 30            # default: 100 events/s
    .venv/bin/python -m tests.chaos.soak --minutes 2 --rate 50 --out soak.json

Starts its own embedded broker and ClickHouse and the three services (real processes, loopback
only), posts events to ingest at `--rate` from one bounded thread, samples the resident memory
(RSS, with children) of every process every `--sample-s` seconds, and at the end checks the
chaos suite's invariants (every acknowledged event stored exactly once, aggregates equal a
recount, every churn alert delivered or parked) and the memory trend of the services.

Exit code 0 when the invariants hold and no service grew by more than `--max-growth-mb` between
the median of the first and of the last quarter of the samples; 1 otherwise. The broker
(in-memory storage that only grows) and ClickHouse (holds the data) are reported, not judged.
Not part of `make test` / `make chaos`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from deploy.embedded.clickhouse import EmbeddedClickHouse
from deploy.embedded.kafka import EmbeddedKafka
from deploy.embedded.process import free_port
from tests.chaos.harness import (
    FreezableReceiver,
    Load,
    Stack,
    alerts_settled,
    check_invariants,
    descendants,
    raised_alerts,
    wait_stored,
    wait_until,
)


def rss_mb(pid: int | None) -> float:
    """Resident memory of `pid` and its descendants, in MiB (0 if gone)."""
    if pid is None:
        return 0.0
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _quarter_medians(values: list[float]) -> tuple[float, float]:
    q = max(1, len(values) // 4)
    return statistics.median(values[:q]), statistics.median(values[-q:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="load duration (default 30)")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second (default 100)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="memory sampling period (default 10 s)")
    parser.add_argument("--max-growth-mb", type=float, default=150.0,
                        help="allowed RSS growth of a service, first vs last quarter (default 150)")
    parser.add_argument("--out", type=Path, default=None, help="write samples and verdict as JSON here")
    parser.add_argument("--workdir", type=Path, default=None, help="logs and ClickHouse data (default: temp)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ksp-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"soak: {args.minutes:g} min at {args.rate:g} events/s; logs in {workdir}", flush=True)
    broker = EmbeddedKafka(log_path=workdir / "broker.log").start()
    clickhouse = EmbeddedClickHouse(workdir / "clickhouse", port=free_port(), log_path=workdir / "clickhouse.log")
    receiver = FreezableReceiver("soak")
    stack: Stack | None = None
    samples: list[dict[str, float]] = []
    verdict: dict[str, object] = {}
    try:
        clickhouse.start()
        stack = Stack(broker.bootstrap_servers, clickhouse.url, workdir, receivers=[receiver])
        stack.start()
        duration = args.minutes * 60
        unit = f"soak-{uuid.uuid4().hex[:6]}"
        load = Load(stack.ingest_url, unit, rate=args.rate, batch=5, duration_s=duration,
                    max_events=int(args.rate * duration * 1.1) + 100, churn_every=200, drain_s=60).start()
        started = time.monotonic()
        while load._thread.is_alive():
            sample = {"t": round(time.monotonic() - started, 1), "acked": len(load.acked)}
            for name, process in stack.processes.items():
                sample[name] = round(rss_mb(process.pid), 1)
                if not process.alive():
                    sample[f"{name}_dead"] = 1
            sample["broker"] = round(rss_mb(broker.process.pid), 1)
            sample["clickhouse"] = round(rss_mb(clickhouse.pid), 1)
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            load._thread.join(args.sample_s)
        load.join(timeout=5)
        print(f"load done: {len(load.acked)} acknowledged, {load.stats}", flush=True)
        stored = wait_stored(clickhouse.url, unit, load.acked, timeout=180)
        try:
            wait_until(lambda: alerts_settled(stack.alerts_api(), [receiver], unit, load.acked_churn_customers,
                                              raised_alerts(broker.bootstrap_servers, stack.topics.alerts, unit)),
                       120, "alerts to settle", interval=2.0)
        except AssertionError:
            pass
        raised = raised_alerts(broker.bootstrap_servers, stack.topics.alerts, unit)
        violations = check_invariants(clickhouse.url, unit, load.acked, alerts=stack.alerts_api(),
                                      receivers=[receiver], expected_customers=load.acked_churn_customers,
                                      raised=raised)
        if not stored:
            violations.append("not every acknowledged event was stored within 180 s after the load")
        for name in stack.processes:
            if any(s.get(f"{name}_dead") for s in samples):
                violations.append(f"{name} died during the soak")
            series = [s[name] for s in samples if s.get(name)]
            if len(series) >= 4:
                first, last = _quarter_medians(series)
                if last - first > args.max_growth_mb:
                    violations.append(f"{name} RSS grew {last - first:.0f} MiB ({first:.0f} -> {last:.0f})")
        growth = {}
        for name in [*stack.processes, "broker", "clickhouse"]:
            series = [s[name] for s in samples if s.get(name)]
            if series:
                first, last = _quarter_medians(series)
                growth[name] = {"first_quarter_mb": first, "last_quarter_mb": last, "max_mb": max(series)}
        verdict = {"acknowledged": len(load.acked), "alerts": len(raised),
                   "alerts_inhibited": sum(1 for a in raised.values() if a.get("_inhibited")),
                   "violations": violations,
                   "memory": growth, "load": {k: v for k, v in vars(load.stats).items() if k != "rejected_requests"}
                   | {"rejected_requests": dict(load.stats.rejected_requests)}}
        print(json.dumps(verdict, indent=2), flush=True)
    finally:
        if stack is not None:
            stack.stop()
        receiver.stop()
        broker.stop()
        clickhouse.stop()
        if args.out:
            args.out.write_text(json.dumps({"samples": samples, "verdict": verdict}, indent=2))
    return 0 if verdict and not verdict.get("violations") else 1


if __name__ == "__main__":
    sys.exit(main())
