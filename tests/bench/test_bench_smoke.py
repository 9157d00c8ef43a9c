"""`make bench` at a tiny scale: every section runs for real (embedded broker, ClickHouse, the three
services as processes) and yields the documented structure with positive numbers. No timing
assertions: this checks the harness, not the performance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import SECTIONS, TINY, main, run_all
from bench.report import measures, median_of, write

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_all(TINY, SECTIONS, logs=tmp_path_factory.mktemp("bench-logs"))


def positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_machine_and_config(results: dict[str, Any]) -> None:
    m = results["machine"]
    assert m["cores"] >= 1 and m["ram_gib"] > 0 and m["python"].startswith("3.")
    assert {"tansu", "chdb-core", "faust-streaming", "aiokafka"} <= set(m["versions"])
    assert results["config"]["runs"] == 1
    assert set(results["sections"]) == set(SECTIONS)
    failed = {name: s.get("error") for name, s in results["sections"].items() if s.get("failed")}
    assert not failed


def test_baseline(results: dict[str, Any]) -> None:
    section = results["sections"]["baseline"]
    assert len(section["runs"]) == 1
    med = section["median"]
    for key in ("kafka_python_produce_msgs_s", "kafka_python_consume_msgs_s", "aiokafka_produce_msgs_s",
                "aiokafka_consume_msgs_s"):
        assert positive(med[key]), key
    assert med["aiokafka_consumed"] == TINY.baseline_messages


def test_ingest(results: dict[str, Any]) -> None:
    med = results["sections"]["ingest"]["median"]
    assert positive(med["batched"]["events_s"]) and positive(med["batched"]["p99_ms"])
    assert positive(med["single"]["requests_s"]) and positive(med["single"]["p50_ms"])
    assert positive(med["batched"]["ingest_cpu_us_per_event"])
    assert results["sections"]["ingest"]["generator"]


def test_scoring(results: dict[str, Any]) -> None:
    med = results["sections"]["scoring"]["median"]
    for part in ("plain_loop", "faust_worker"):
        assert med[part]["scored"] == TINY.scoring_events, part
        assert positive(med[part]["events_s"]), part
    assert positive(med["raw_consume"]["events_s"])
    assert positive(med["ratio_to_plain_loop"]) and positive(med["ratio_to_raw_consume"])


def test_sink(results: dict[str, Any]) -> None:
    med = results["sections"]["sink"]["median"]
    assert med["rows"] == TINY.sink_events and positive(med["rows_s"])


def test_e2e(results: dict[str, Any]) -> None:
    run = results["sections"]["e2e"]["median"]
    assert run["all_stored"] and positive(run["stored_rows"])
    latency = run["accepted_to_inserted_ms"]
    assert positive(latency["p50"]) and latency["p99"] >= latency["p50"]
    assert run["alert_probes"]["sent"] >= 1
    if run["alerts_error"] is None:
        assert run["alert_probes"]["delivered"] >= 1 and positive(run["alert_probes"]["p50_s"])
    for name in ("broker", "clickhouse", "ingest", "scoring"):
        assert positive(run["peak_rss"][name]["peak_rss_mib_tree_sum"]), name


def test_text_and_detectors(results: dict[str, Any]) -> None:
    for name in ("text", "detectors"):
        section = results["sections"][name]
        assert "available" in section
        if section["available"]:
            assert isinstance(section["result"], dict) and section["result"]
        else:
            assert section["reason"]


def test_report(results: dict[str, Any], tmp_path: Path) -> None:
    rows = measures(results["sections"])
    assert rows and all({"measure", "result", "baseline", "ratio", "target", "met"} <= set(r) for r in rows)
    assert any(r["target"] for r in rows)
    out, md = tmp_path / "latest.json", tmp_path / "BENCHMARKS.md"
    write(results, out, md)
    assert json.loads(out.read_text())["measures"]
    text = md.read_text()
    assert "| measure | result | baseline | ratio | target | met? |" in text and "How to rerun" in text


def test_median_of() -> None:
    runs = [{"a": 1.0, "b": {"c": 3}, "ok": True, "s": "x"}, {"a": 3.0, "b": {"c": 5}, "ok": False, "s": "y"},
            {"a": 2.0, "b": {"c": 4}, "ok": True, "s": "z"}]
    assert median_of(runs) == {"a": 2.0, "b": {"c": 4}, "ok": False}


def test_cli_rejects_unknown_section() -> None:
    with pytest.raises(SystemExit):
        main(["--only", "nonsense"])
