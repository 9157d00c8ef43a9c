"""Medians over runs, the measures table with targets, `latest.json` and `BENCHMARKS.md`."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric leaf over the runs (same shape as one run; non-numbers dropped)."""
    if not runs:
        return {}
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r.get(key) for r in runs]
        if isinstance(first, bool):
            out[key] = all(bool(v) for v in values)
        elif isinstance(first, (int, float)):
            nums = [float(v) for v in values if isinstance(v, (int, float))]
            out[key] = statistics.median(nums) if nums else None
        elif isinstance(first, dict):
            out[key] = median_of([v for v in values if isinstance(v, dict)])
    return out


def get(data: dict[str, Any] | None, path: str) -> Any:
    cur: Any = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def measure(name: str, result: float | None, unit: str, *, baseline: float | None = None,
            baseline_name: str = "", target: str = "", met: bool | None = None,
            ratio: float | None = None, note: str = "") -> dict[str, Any]:
    if ratio is None and result is not None and baseline:
        ratio = result / baseline
    return {"measure": name, "result": result, "unit": unit, "baseline": baseline, "baseline_name": baseline_name,
            "ratio": ratio, "target": target, "met": met, "note": note}


def measures(sections: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    base = get(sections, "baseline.median") or {}
    ak_prod, ak_cons = base.get("aiokafka_produce_msgs_s"), base.get("aiokafka_consume_msgs_s")
    if base:
        rows += [
            measure("broker: aiokafka produce (300 B, acks=all)", ak_prod, "msgs/s", note="physical limit"),
            measure("broker: aiokafka consume (300 B)", ak_cons, "msgs/s"),
            measure("broker: kafka-python produce (300 B, acks=all)", base.get("kafka_python_produce_msgs_s"), "msgs/s"),
            measure("broker: kafka-python consume (300 B)", base.get("kafka_python_consume_msgs_s"), "msgs/s"),
        ]
    ing = get(sections, "ingest.median")
    if ing:
        ev, p99b = get(ing, "batched.events_s"), get(ing, "batched.p99_ms")
        rq, p99s = get(ing, "single.requests_s"), get(ing, "single.p99_ms")
        rows += [
            measure(f"ingest: batched events/s ({_fmt(get(ing, 'batched.batch_size'))}/request, "
                    f"{_fmt(get(ing, 'batched.connections'))} connections, {_fmt(ing.get('workers'))} workers)",
                    ev, "events/s", baseline=ak_prod,
                    baseline_name="aiokafka produce", target=">= 50,000", met=ev is not None and ev >= 50_000),
            measure("ingest: CPU per event, batched (all ingest processes)", get(ing, "batched.ingest_cpu_us_per_event"), "µs",
                    note=f"busiest worker did {_fmt(get(ing, 'batched.busiest_process_cpu_share'))} of the CPU work"),
            measure("ingest: batched, CPU-bound ceiling (each worker a whole core, nothing else running)",
                    _ceiling(get(ing, "batched.ingest_cpu_us_per_event"), ing.get("workers") or 2), "events/s",
                    target=">= 50,000", note="2 x 1e6 / CPU µs per event; optimistic"),
            measure("ingest: batched request p50", get(ing, "batched.p50_ms"), "ms"),
            measure("ingest: batched request p99", p99b, "ms", target="<= 100", met=p99b is not None and p99b <= 100),
            measure("ingest: single-event requests/s (2 workers)", rq, "requests/s", baseline=ak_prod,
                    baseline_name="aiokafka produce", target=">= 8,000", met=rq is not None and rq >= 8_000),
            measure("ingest: CPU per single-event request", get(ing, "single.ingest_cpu_us_per_request"), "µs",
                    note=f"busiest worker did {_fmt(get(ing, 'single.busiest_process_cpu_share'))} of the CPU work"),
            measure("ingest: single-event, CPU-bound ceiling (each worker a whole core)",
                    _ceiling(get(ing, "single.ingest_cpu_us_per_request"), ing.get("workers") or 2), "requests/s",
                    target=">= 8,000", note="optimistic"),
            measure("ingest: single-event request p50", get(ing, "single.p50_ms"), "ms"),
            measure("ingest: single-event request p99", p99s, "ms", target="<= 50", met=p99s is not None and p99s <= 50),
        ]
    sc = get(sections, "scoring.median")
    if sc:
        faust, plain, raw = get(sc, "faust_worker.events_s"), get(sc, "plain_loop.events_s"), get(sc, "raw_consume.events_s")
        ratio = sc.get("ratio_to_plain_loop")
        rows += [
            measure("scoring: one Faust worker, sink off", faust, "events/s", baseline=plain,
                    baseline_name="plain aiokafka loop, same work", ratio=ratio, target="ratio >= 0.33",
                    met=ratio is not None and ratio >= 1 / 3),
            measure("scoring: CPU per event, Faust worker", get(sc, "faust_worker.cpu_us_per_event"), "µs",
                    baseline=get(sc, "plain_loop.cpu_us_per_event"), baseline_name="plain loop",
                    ratio=sc.get("cpu_ratio_plain_to_faust"), target="ratio >= 0.33",
                    met=None if sc.get("cpu_ratio_plain_to_faust") is None else sc["cpu_ratio_plain_to_faust"] >= 1 / 3,
                    note="ratio = plain/Faust, robust to other load"),
            measure("scoring: Faust worker, CPU-bound ceiling (one core)", _ceiling(get(sc, "faust_worker.cpu_us_per_event"), 1),
                    "events/s", baseline=_ceiling(get(sc, "plain_loop.cpu_us_per_event"), 1),
                    baseline_name="plain loop ceiling"),
            measure("scoring: plain aiokafka consume-process-produce loop", plain, "events/s", baseline=raw,
                    baseline_name="raw aiokafka consume"),
            measure("scoring: Faust worker vs raw consume", faust, "events/s", baseline=raw,
                    baseline_name="raw aiokafka consume", ratio=sc.get("ratio_to_raw_consume")),
        ]
    sk = get(sections, "sink.median")
    if sk:
        rows.append(measure("sink: scored topic -> ClickHouse", sk.get("rows_s"), "rows/s", baseline=ak_cons,
                            baseline_name="raw aiokafka consume"))
        rows.append(measure("sink: worker CPU per row", sk.get("worker_cpu_us_per_row"), "µs",
                            note=f"CPU-bound ceiling {_fmt(_ceiling(sk.get('worker_cpu_us_per_row'), 1))} rows/s on one core"))
    e2e = get(sections, "e2e.median")
    if e2e:
        p99 = get(e2e, "accepted_to_inserted_ms.p99")
        al99, al50 = get(e2e, "alert_probes.p99_s"), get(e2e, "alert_probes.p50_s")
        delivered, sent = get(e2e, "alert_probes.delivered"), get(e2e, "alert_probes.sent")
        offered = e2e.get("offered_events_s")
        rows += [
            measure(f"e2e @ {offered:g} events/s: achieved accepted rate", e2e.get("achieved_events_s"), "events/s",
                    baseline=offered, baseline_name="offered"),
            measure("e2e: accepted -> inserted p50", get(e2e, "accepted_to_inserted_ms.p50"), "ms"),
            measure("e2e: accepted -> inserted p99", p99, "ms", target="<= 2,000", met=p99 is not None and p99 <= 2000),
            measure("e2e: accepted -> alert delivered p50 (churn probes)", al50, "s"),
            measure("e2e: accepted -> alert delivered p99 (churn probes)", al99, "s", target="<= 5",
                    met=al99 is not None and al99 <= 5 and delivered == sent,
                    note=(f"{delivered:g}/{sent:g} probes delivered" if sent is not None else "")
                    + (f"; {str(e2e.get('alerts_error'))[:160]}" if e2e.get("alerts_error") else "")),
        ]
        per_event = get(e2e, "cpu_us_per_event") or {}
        if per_event:
            rows.append(measure("e2e: CPU per event, all processes", sum(per_event.values()), "µs",
                                note=", ".join(f"{k} {v:g}" for k, v in sorted(per_event.items()))))
        if e2e.get("cpu_contention"):
            rows.append(measure("e2e: CPU share used by other processes on the machine",
                                e2e["cpu_contention"].get("other_processes_share"), ""))
        for name, peak in sorted((get(e2e, "peak_rss") or {}).items()):
            rows.append(measure(f"peak RSS during e2e: {name}", peak.get("peak_rss_mib_tree_sum"), "MiB",
                                note=f"{peak.get('processes', 1):g} process(es); largest {peak.get('peak_rss_mib_max_process')} MiB"))
    text = get(sections, "text.result")
    if isinstance(text, dict):
        for lang in ("de", "en"):
            t = text.get(lang)
            if isinstance(t, dict):
                maj = get(t, "majority_baseline.macro_f1")
                vader = t.get("vader_macro_f1")
                rows.append(measure(f"text {lang}: macro-F1, in-sample: rules tuned on this set ({t.get('file')}, "
                                    f"n={t.get('n')})", t.get("macro_f1"), "",
                                    baseline=vader, baseline_name="VADER" if vader is not None else "",
                                    note=f"majority baseline {maj}; accuracy {t.get('accuracy')}"))
                rows += _text_cv_rows(lang, t)
                rows.append(measure(f"text {lang}: latency per comment p50 / p99", get(t, "latency_ms.median"), "ms",
                                    note=f"p99 {get(t, 'latency_ms.p99')} ms"))
                cpu_p99 = get(t, "cpu_ms.p99")
                rows.append(measure(f"text {lang}: CPU per comment p99 (one core)", cpu_p99, "ms",
                                    target="<= 5", met=cpu_p99 is not None and cpu_p99 <= 5,
                                    note=f"median {get(t, 'cpu_ms.median')} ms"))
    det = get(sections, "detectors.result")
    if isinstance(det, dict):
        fa = det.get("false_alarms_per_1000_days") or {}
        rows.append(measure("drop detector: false alarms / 1,000 in-control days", fa.get("detector"), "",
                            baseline=fa.get("naive"), baseline_name="naive daily z-test"))
        for shift, d in sorted((det.get("delay_responses") or {}).items(), key=lambda kv: float(kv[0])):
            rows.append(measure(f"drop detector: median detection delay, {shift}-point NPS drop",
                                get(d, "detector.median"), "responses", baseline=get(d, "naive.median"),
                                baseline_name="naive daily z-test",
                                note=f"undetected: detector {get(d, 'detector.undetected')}, naive {get(d, 'naive.undetected')}"))
    return rows


# Targets of the text analyser per language and metric (held out, as the CV rows report them).
_TEXT_TARGETS: dict[tuple[str, str], float] = {("en", "macro_f1"): 0.65, ("de", "accuracy"): 0.75,
                                               ("de", "macro_f1"): 0.55}


def _text_cv_rows(lang: str, t: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out quality: each fold scored with the tuning chosen on the other folds."""
    cv = t.get("cross_validation")
    if not isinstance(cv, dict):
        return []
    rows = []
    for metric, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        mean, target = get(cv, f"held_out.{metric}.mean"), _TEXT_TARGETS.get((lang, metric))
        rows.append(measure(
            f"text {lang}: {name}, {cv.get('k')}-fold cross-validated", mean, "",
            baseline=get(cv, f"in_sample_shipped.{metric}"), baseline_name="in-sample, shipped tuning",
            target=f">= {target}" if target else "", met=None if target is None or mean is None else mean >= target,
            note=(f"sd {get(cv, f'held_out.{metric}.sd')} over folds, range {get(cv, f'held_out.{metric}.min')}"
                  f"–{get(cv, f'held_out.{metric}.max')}; {cv.get('folds_choosing_shipped')}/{cv.get('k')} folds "
                  f"chose the shipped tuning ({cv.get('objective')}, {cv.get('grid_points')} grid points)")))
    return rows


def _ceiling(cpu_us: float | None, cores: float) -> float | None:
    return cores * 1e6 / cpu_us if cpu_us else None


def contention_rows(sections: dict[str, Any]) -> list[str]:
    out = []
    for name, section in sections.items():
        shares = [r.get("cpu_contention", {}).get("other_processes_share") for r in section.get("runs", [])
                  if isinstance(r, dict)]
        shares = [s for s in shares if s is not None]
        if shares:
            out.append(f"| {name} | {', '.join(f'{s:.0%}' for s in shares)} | {section.get('loadavg_before')} |")
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    cfg = results["config"]
    lines = [
        "# Benchmarks",
        "",
        (f"Generated by `make bench` (`python -m bench{' --quick' if cfg.get('quick') else ''}`) on "
        f"{results['generated_at']}; everything below was measured in that one run, on the embedded defaults "
        "(Tansu broker in memory, chdb ClickHouse), every process on the same machine. Results are medians "
        f"of {cfg['runs']} run(s) per section (the end-to-end section runs once); the raw numbers of each run are in "
        "`bench/results/latest.json`. Timings on a shared 2-core machine are noisy: compare ratios, not digits."),
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['cores']} cores; RAM {m['ram_gib']} GiB; Linux {m['kernel']}",
        f"- Python {m['python']}; {versions}",
        f"- ingest load generator: {results['sections'].get('ingest', {}).get('generator', '—')}",
        "",
        "## Results",
        "",
        "| measure | result | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["measures"]:
        unit = f" {row['unit']}" if row["unit"] else ""
        baseline = f"{_fmt(row['baseline'])} ({row['baseline_name']})" if row["baseline"] is not None else "—"
        met = "—" if row["met"] is None else ("yes" if row["met"] else "**no**")
        note = f" — {row['note']}" if row["note"] else ""
        lines.append(f"| {row['measure']} | {_fmt(row['result'])}{unit}{note} | {baseline} | {_fmt(row['ratio'])} | "
                     f"{row['target'] or '—'} | {met} |")
    contention = contention_rows(results["sections"])
    if contention:
        lines += ["", "## Other load on the machine during each run", "",
                  ("Share of the machine's CPU used by processes outside this benchmark while each run was measured "
                  "(from /proc/stat and /proc/<pid>/stat). Wall-clock rates shrink with it; CPU time per event does not."),
                  "", "| section | other processes' CPU share per run | load average before |", "|---|---|---|",
                  *contention]
    lines += ["", "## Configuration", "", "```json", json.dumps(cfg, indent=2), "```", ""]
    notes = results.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += [
        "## How to rerun",
        "",
        "```bash",
        "make bench                              # full run (about 10 min): bench/results/latest.json + BENCHMARKS.md",
        ".venv/bin/python -m bench --quick       # smaller, about 3 min",
        ".venv/bin/python -m bench --runs 5 --out /tmp/bench.json --markdown /tmp/BENCH.md",
        ".venv/bin/python -m bench --only scoring,sink   # some sections only",
        "```",
        "",
        ("Keep the machine otherwise idle. `apt-get install wrk` makes the ingest load generator cheaper "
        "(else an aiohttp generator is used and competes harder for the CPU). Logs of the processes of "
        "each section of the last run are kept in `.ksp-data/bench-logs/`."),
        "",
    ]
    return "\n".join(lines)


def write(results: dict[str, Any], out: Path, md: Path | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if md is not None:
        md.write_text(markdown(results))
