"""`make bench` / `python -m bench`: every number beside its baseline, measured in the same run.

    python -m bench [--quick] [--runs N] [--out PATH] [--markdown PATH] [--only a,b]

Sections: baseline (raw broker), ingest, scoring, sink, e2e (+ peak RSS), text, detectors.
Each section gets a fresh embedded broker (and ClickHouse where needed); a section that fails is
reported as failed in the results and the others still run.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import baseline, detectors, e2e, ingest, scoring, sink, text
from bench.infra import infra, progress
from bench.procs import contention_end, contention_start, loadavg, machine
from bench.report import measures, median_of, write

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("baseline", "ingest", "scoring", "sink", "e2e", "text", "detectors")


@dataclass(frozen=True)
class Config:
    quick: bool = False
    runs: int = 3
    baseline_messages: int = 50_000
    ingest_seconds: float = 15.0
    ingest_workers: int = 2
    # Request shape of the batched test: events in flight = connections x batch size, and by
    # Little's law p99 >= in flight / rate, so 1,000-event requests on 8 connections cannot meet
    # p99 <= 100 ms below 80k events/s; 250 x 8 (2,000 in flight) can at 50k events/s.
    ingest_batch_size: int = 250
    ingest_batch_connections: int = 8
    ingest_single_connections: int = 32
    scoring_events: int = 20_000
    sink_events: int = 20_000
    e2e_rate: float = 1000.0
    e2e_seconds: float = 60.0
    e2e_batch: int = 20
    e2e_probe_every_s: float = 2.0
    drain_timeout_s: float = 180.0
    detectors_quick: bool = False
    detectors_kwargs: dict[str, Any] | None = None


FULL = Config()
QUICK = Config(quick=True, runs=1, baseline_messages=20_000, ingest_seconds=5.0, scoring_events=5_000,
               sink_events=5_000, e2e_seconds=20.0, drain_timeout_s=90.0, detectors_quick=True)
TINY = Config(quick=True, runs=1, baseline_messages=500, ingest_seconds=1.0, ingest_batch_connections=2,
              ingest_single_connections=2, scoring_events=300, sink_events=300, e2e_rate=100.0, e2e_seconds=4.0,
              e2e_probe_every_s=1.0, drain_timeout_s=60.0, detectors_quick=True,
              detectors_kwargs={"in_control_days": 20, "fa_streams": 2, "change_reps": 4})


def _runs(name: str, config: Config, one: Any) -> dict[str, Any]:
    runs = []
    for i in range(config.runs):
        progress(f"{name}: run {i + 1}/{config.runs}")
        window = contention_start()
        run = one()
        run["cpu_contention"] = contention_end(window)
        runs.append(run)
    return {"runs": runs, "median": median_of(runs)}


def run_section(name: str, config: Config, logs: Path | None) -> dict[str, Any]:
    if name == "baseline":
        with infra(name, keep=logs) as inf:
            return _runs(name, config, lambda: baseline.run_once(inf.bootstrap, config.baseline_messages))
    if name == "ingest":
        with infra(name, keep=logs) as inf:
            result = _runs(name, config, lambda: ingest.run_once(
                inf, config.ingest_seconds, config.ingest_batch_connections, config.ingest_single_connections,
                batch_size=config.ingest_batch_size, workers=config.ingest_workers))
            result["generator"] = result["runs"][0]["batched"]["generator"]
            return result
    if name == "scoring":
        with infra(name, keep=logs) as inf:
            return _runs(name, config, lambda: scoring.run_once(inf, config.scoring_events, config.drain_timeout_s))
    if name == "sink":
        with infra(name, clickhouse=True, keep=logs) as inf:
            return _runs(name, config, lambda: sink.run_once(inf, config.sink_events, config.drain_timeout_s))
    if name == "e2e":
        with infra(name, clickhouse=True, keep=logs) as inf:
            progress("e2e: run 1/1")
            window = contention_start()
            run = e2e.run_once(inf, config.e2e_rate, config.e2e_seconds, config.e2e_batch, config.e2e_probe_every_s,
                               settle_timeout=config.drain_timeout_s)
            run["cpu_contention"] = contention_end(window)
            return {"runs": [run], "median": run}
    if name == "text":
        progress("text: evaluate on ../shared/data")
        return text.run()
    if name == "detectors":
        progress("detectors: simulate (detector vs naive rule)")
        return detectors.run(quick=config.detectors_quick, kwargs=config.detectors_kwargs)
    raise ValueError(f"unknown section {name!r}")


def run_all(config: Config, only: tuple[str, ...] = SECTIONS, logs: Path | None = None) -> dict[str, Any]:
    started = time.monotonic()
    sections: dict[str, Any] = {}
    for name in only:
        t0 = time.monotonic()
        load_before = loadavg()
        try:
            sections[name] = run_section(name, config, logs)
        except Exception as exc:  # noqa: BLE001 - report the failure, run the other sections
            progress(f"{name}: FAILED: {exc!r}")
            sections[name] = {"failed": True, "error": repr(exc), "traceback": traceback.format_exc()[-4000:]}
        sections[name]["section_seconds"] = round(time.monotonic() - t0, 1)
        sections[name]["loadavg_before"] = load_before
        progress(f"{name}: done in {sections[name]['section_seconds']:.0f} s")
    notes = [
        ("Rates are steady-state: from the first to the last output seen (the consumer-group join on Tansu, "
        "~session_timeout/2 = 3 s, is excluded; the rate including start-up is in the JSON)."),
        ("Because other work on a shared machine distorts wall-clock rates, CPU time per event of the measured "
        "process (user+system from /proc, from first to last output) is reported beside them; the load average "
        "before each section is in the JSON."),
        ("Scored events are counted with a consumer using manual assignment (end offsets are wrong on Tansu); "
        "that consumer runs in the bench process and competes for the same 2 cores."),
        ("Ingest runs with KSP_RATE_LIMIT_ENABLED=false: the default per-key limit (20,000 events/s per worker, "
        "anonymous key in dev) would otherwise cap the batched test below its target."),
        ("The single-event load gives every request a new event id (the wrk Lua script rewrites it), so the "
        "events' keys spread over the raw topic's partitions as real traffic does; the same body every time "
        "would put every event on one partition, where the producer's batches coalesce best."),
        ("The e2e run uses the plain embedded defaults (`ksp run`: 1 ingest worker, rate limits on, sink inside "
        "the scoring worker); after a warm-up batch has reached ClickHouse, its load is batches of 20 events, "
        "plus one churn probe event every "
        f"{config.e2e_probe_every_s:g} s whose alert is awaited at the webhook receiver."),
    ]
    failed = [n for n, s in sections.items() if s.get("failed")]
    if failed:
        notes.append(f"Sections that failed in this run: {', '.join(failed)} (see latest.json).")
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "config": asdict(config),
        "sections": sections,
        "measures": measures(sections),
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 1 run per section (~3 min)")
    parser.add_argument("--runs", type=int, help="runs per section (default 3, --quick 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json", help="results JSON")
    parser.add_argument("--markdown", type=lambda v: Path(v) if v else None, default=ROOT / "BENCHMARKS.md",
                        help="Markdown report ('' for none)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every broker, ClickHouse and service started is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = QUICK if args.quick else FULL
    if args.runs:
        config = replace(config, runs=max(1, args.runs))
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    logs = ROOT / ".ksp-data" / "bench-logs"  # gitignored; process logs of the last run
    shutil.rmtree(logs, ignore_errors=True)
    progress(f"bench {'--quick ' if config.quick else ''}runs={config.runs} sections={','.join(only)}")
    results = run_all(config, only, logs)
    write(results, args.out, args.markdown)
    progress(f"wrote {args.out}" + (f" and {args.markdown}" if args.markdown else "")
             + f" in {results['total_seconds']:.0f} s")
    for row in results["measures"]:
        met = "" if row["met"] is None else ("  [met]" if row["met"] else "  [NOT met]")
        progress(f"  {row['measure']}: {row['result']!r:.10} {row['unit']}{met}")
    return 1 if any(s.get("failed") for s in results["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
