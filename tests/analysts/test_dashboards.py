"""The Grafana dashboards: valid JSON with the expected structure; every ClickHouse query of
quality.json runs on the real (embedded) ClickHouse once Grafana's macros are replaced; every
Prometheus metric in pipeline.json is one the services declare in services/*/metrics.py.

Macro replacement (the only macros and variables the dashboards may use, see docs/analysts.md):

* ``$__timeFilter(col)``        -> ``col >= now() - INTERVAL 7 DAY`` (and, to check that the
  panels return data, ``col >= '2025-03-03' AND col < '2025-03-17'``: the test data window)
* ``$__interval_s``             -> ``3600``
* ``${touchpoint:singlequote}`` -> ``'web', 'store', 'call_centre', 'internal'``
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.analysts.conftest import FROM, TO

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
CH_TYPE, CH_UID = "grafana-clickhouse-datasource", "clickhouse"
PROM_TYPE, PROM_UID = "prometheus", "prometheus"
TOUCHPOINTS = "'web', 'store', 'call_centre', 'internal'"
_TIME_FILTER = re.compile(r"\$__timeFilter\((\w+)\)")


def load(name: str) -> dict:
    return json.loads((DASHBOARDS / name).read_text())


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return out


def data_panels(dashboard: dict) -> list[dict]:
    return [p for p in panels(dashboard) if p["type"] != "row"]


def expand(sql: str, window: tuple[str, str] | None = None) -> str:
    if window is None:
        sql = _TIME_FILTER.sub(r"\1 >= now() - INTERVAL 7 DAY", sql)
    else:
        sql = _TIME_FILTER.sub(rf"\1 >= '{window[0]}' AND \1 < '{window[1]}'", sql)
    sql = sql.replace("$__interval_s", "3600").replace("${touchpoint:singlequote}", TOUCHPOINTS)
    assert "$" not in sql, f"undocumented Grafana macro or variable left in: {sql}"
    return sql


def clickhouse_queries() -> list[tuple[str, str]]:
    dashboard = load("quality.json")
    queries = [(p["title"], t["rawSql"]) for p in data_panels(dashboard) for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append((f"variable {variable['name']}", variable["query"]))
    return queries


# -- structure ---------------------------------------------------------------------------------

def test_dashboard_files() -> None:
    names = sorted(p.name for p in DASHBOARDS.glob("*.json"))
    assert {"pipeline.json", "quality.json"} <= set(names)
    for name in names:  # every dashboard: valid JSON with uid, title and panels with targets
        dashboard = load(name)
        assert dashboard["uid"] and dashboard["title"] and data_panels(dashboard)
        assert all(p["targets"] for p in data_panels(dashboard)), name


@pytest.mark.parametrize("name, ds_type, ds_uid", [("quality.json", CH_TYPE, CH_UID),
                                                    ("pipeline.json", PROM_TYPE, PROM_UID)])
def test_structure(name: str, ds_type: str, ds_uid: str) -> None:
    dashboard = load(name)
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert dashboard["time"]["from"] and dashboard["time"]["to"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert len(data_panels(dashboard)) >= 6
    for panel in data_panels(dashboard):
        assert panel["title"] and panel["type"] in {"timeseries", "stat", "barchart", "table"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["datasource"] == {"type": ds_type, "uid": ds_uid}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no targets"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["datasource"] == {"type": ds_type, "uid": ds_uid}
            if ds_type == CH_TYPE:
                assert target["editorType"] == "sql" and target["rawSql"].strip()
                assert target["queryType"] in {"timeseries", "table"}
                assert target["format"] == (0 if target["queryType"] == "timeseries" else 1)
            else:
                assert target["expr"].strip()


def test_quality_dashboard_content() -> None:
    dashboard = load("quality.json")
    titles = " | ".join(p["title"] for p in panels(dashboard))
    for word in ("NPS", "CSAT", "CES", "Sentiment", "Responses (n)", "themes", "Churn-intent"):
        assert word in titles
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "touchpoint" and variable["multi"] and variable["includeAll"]
    assert variable["datasource"]["uid"] == CH_UID
    # the score panels draw a 95 % band: <m>_high filled down to <m>_low
    for panel in data_panels(dashboard):
        sql = panel["targets"][0]["rawSql"]
        for measure in ("nps", "csat", "ces", "sentiment"):
            if f"AS {measure}_high" in sql:
                fills = [prop for o in panel["fieldConfig"]["overrides"]
                         if o["matcher"]["options"] == f"{measure}_high" for prop in o["properties"]
                         if prop["id"] == "custom.fillBelowTo"]
                assert fills and fills[0]["value"] == f"{measure}_low", panel["title"]
    banded = [p for p in data_panels(dashboard) if "_high" in p["targets"][0]["rawSql"]]
    assert len(banded) == 4
    # SummingMergeTree aggregates are only read through sum() ... GROUP BY
    for _, sql in clickhouse_queries():
        if re.search(r"FROM kundensprechen\.(quality|theme)_(minute|hour|day)\b", sql) and \
                "DISTINCT" not in sql:
            assert "sum(" in sql


# -- ClickHouse: every query runs --------------------------------------------------------------

@pytest.mark.parametrize("title, sql", clickhouse_queries(), ids=lambda v: v[:40])
def test_clickhouse_queries_run(ch_client, analyst_data, title: str, sql: str) -> None:
    ch_client.query(expand(sql))  # the documented replacement: last 7 days
    rows = ch_client.query(expand(sql, (FROM, TO))).result_rows  # the analyst data window
    assert rows, f"{title}: no rows for the test data"


def test_nps_panel_numbers(ch_client, analyst_data) -> None:
    """The NPS panel, restricted to web on 2025-03-04, gives the view's numbers (NPS 30 +- 15.31)."""
    (panel,) = [p for p in data_panels(load("quality.json")) if p["title"].startswith("NPS")]
    sql = expand(panel["targets"][0]["rawSql"], ("2025-03-04", "2025-03-05"))
    sql = sql.replace(TOUCHPOINTS, "'web'")
    result = ch_client.query(sql)
    assert [list(r)[1:] for r in result.result_rows] == [[30.0, 14.69, 45.31]]


# -- Prometheus: every metric exists ------------------------------------------------------------

def declared_metric_names() -> set[str]:
    """Family names as declared in services/*/metrics.py (grep)."""
    names = set()
    for path in sorted((ROOT / "services").glob("*/metrics.py")):
        names |= set(re.findall(r"""(?:Counter|Gauge|Histogram|Summary)\(\s*["'](ksp_\w+)["']""",
                                path.read_text()))
    return names


def exposed_series_names() -> set[str]:
    """What Prometheus scrapes: counters get _total, histograms _bucket/_sum/_count."""
    from services.alerts.metrics import AlertsMetrics
    from services.ingest.metrics import create_metrics
    from services.scoring.metrics import ScoringMetrics

    registry = CollectorRegistry()
    create_metrics(registry)
    ScoringMetrics(registry)
    AlertsMetrics(registry)
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created")}
    families = list(registry.collect())
    declared = {n.removesuffix("_total") for n in declared_metric_names()}
    assert {f.name for f in families} == declared, "a metrics.py declares metrics not covered here"
    return {f.name + s for f in families for s in suffixes[f.type]}


def test_pipeline_metrics_exist() -> None:
    assert len(list((ROOT / "services").glob("*/metrics.py"))) == 3
    exposed = exposed_series_names()
    exprs = [t["expr"] for p in data_panels(load("pipeline.json")) for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bksp_\w+", e)}
    assert used, "no metrics referenced"
    assert used <= exposed, f"unknown metrics: {sorted(used - exposed)}"
    # the panels the pipeline dashboard promises
    for metric in ("ksp_ingest_requests_total", "ksp_ingest_events_accepted_total",
                   "ksp_ingest_events_rejected_total", "ksp_ingest_produce_seconds_bucket",
                   "ksp_scoring_events_scored_total", "ksp_scoring_batch_duration_seconds_bucket",
                   "ksp_scoring_dead_letters_total", "ksp_sink_rows_inserted_total",
                   "ksp_sink_batch_duration_seconds_bucket", "ksp_alerts_deliveries_total"):
        assert metric in used, metric
    # histogram quantiles aggregate by le
    for expr in exprs:
        if "histogram_quantile" in expr:
            assert "_bucket[" in expr and re.search(r"by \(le\b", expr), expr
