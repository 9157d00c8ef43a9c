"""deploy/prometheus and deploy/grafana/provisioning: the alert rules use metric names the
services really export, and the scrape jobs and datasources line up with compose and k8s."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from services.alerts.metrics import AlertsMetrics
from services.ingest.metrics import create_metrics
from services.scoring.metrics import ScoringMetrics
from tests.deploy.conftest import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana" / "provisioning"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("", "_sum", "_count", "_created")}
EXTERNAL = {"up", "kafka_consumergroup_lag"}  # Prometheus itself and the Kafka exporter


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    ScoringMetrics(registry), AlertsMetrics(registry), create_metrics(registry)
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


def rules() -> list[dict]:
    return [rule for path in sorted((PROMETHEUS / "rules").glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_exported_names_are_what_prometheus_sees() -> None:
    names = exported_names()
    assert {"ksp_scoring_dead_letters_total", "ksp_sink_rows_inserted_total", "ksp_alerts_deliveries_total",
            "ksp_ingest_requests_total", "ksp_sink_batch_duration_seconds_count"} <= names


def test_alert_rules_use_only_existing_metrics() -> None:
    names = exported_names() | EXTERNAL
    for rule in rules():
        expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # label values are not metric names
        expr = re.sub(r"\{[^}]*\}", "", expr)
        used = {m for m in re.findall(r"\b([a-z_][a-z0-9_]*)\b(?=\s*(?:\[|\)|$|\s|>|<|=|\*|/|\+|-))", expr)
                if m.startswith("ksp_") or m in EXTERNAL}
        assert used, f"{rule['alert']}: no metric found in {rule['expr']}"
        assert used <= names, f"{rule['alert']} uses unknown metrics {sorted(used - names)}"


def test_pipeline_health_is_covered() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in rules()}
    assert any("kafka_consumergroup_lag" in e for e in exprs.values()), "consumer lag"
    assert any("ksp_scoring_dead_letters_total" in e for e in exprs.values()), "dead-letter rate"
    assert any("ksp_sink_" in e for e in exprs.values()), "sink errors"
    assert any('outcome="parked"' in e for e in exprs.values()), "delivery failures"
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]


def test_scrape_jobs_match_compose_services_and_ports() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["ksp-ingest"]["static_configs"][0]["targets"] == ["ingest:8000"]
    assert jobs["ksp-scoring"]["dns_sd_configs"][0] == {"names": ["scoring"], "type": "A", "port": 6066,
                                                         "refresh_interval": "30s"}
    assert jobs["ksp-alerts"]["dns_sd_configs"][0]["port"] == 8001
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]
    assert {"kafka-exporter", "prometheus", "grafana"} <= set(compose)
    k8s = yaml.safe_load((PROMETHEUS / "kubernetes-scrape.yml").read_text())
    assert k8s["scrape_configs"][0]["kubernetes_sd_configs"][0]["role"] == "pod"


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load((GRAFANA / "datasources" / "kundensprechen.yaml").read_text())["datasources"]
    by_type = {d["type"]: d for d in datasources}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    clickhouse = by_type["grafana-clickhouse-datasource"]
    assert clickhouse["jsonData"]["host"] == "clickhouse" and clickhouse["jsonData"]["defaultDatabase"] == "kundensprechen"
    assert clickhouse["secureJsonData"]["password"] == "$CLICKHOUSE_PASSWORD"
    providers = yaml.safe_load((GRAFANA / "dashboards" / "kundensprechen.yaml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")) if (DEPLOY / "grafana" / "dashboards").is_dir() else []:
        assert Path(path).read_text().strip().startswith("{")


def test_dashboards_use_the_provisioned_datasource_uids() -> None:
    import json
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
    provisioned = {
        ds["uid"]
        for path in (root / "provisioning" / "datasources").glob("*.yaml")
        for ds in yaml.safe_load(path.read_text())["datasources"]
    }
    used: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and isinstance(ds.get("uid"), str) and not ds["uid"].startswith("$"):
                used.add(ds["uid"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for path in (root / "dashboards").glob("*.json"):
        collect(json.loads(path.read_text()))
    assert used and used <= provisioned, f"dashboards use {used}, provisioned {provisioned}"
