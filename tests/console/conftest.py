"""Browser tests of the ops console: real stack as processes, headless Chromium via Playwright.

Skipped (with the reason) when Chromium or Playwright is missing: run `.ci/install-browser`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.embedded.process import ManagedProcess, free_port
from schemas.topics import Topics
from services.common.clickhouse import migrate
from services.common.kafka import ensure_topics
from services.common.settings import ClickHouseSettings, KafkaSettings

KSP = [sys.executable, "-m", "services.cli"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "artifacts" / "console"
# The built-in rules need thousands of responses per scope before an aggregate drop can fire.
# The console tests use the same detectors with a short warm-up on unit scopes, so a real
# drop alert (window vs baseline, interval of the change) is raised from a few dozen responses.
RULES = """
version: 1
defaults: {scopes: [[unit]], severity: warning}
rules:
  - name: nps-drop
    kind: aggregate_drop
    metric: nps
    min_n: 10
    params: {shift: 30, warmup_n: 60, block_n: 20, hold_n: 20, arl0: 200}
  - name: churn-risk
    kind: churn_risk
    severity: critical
    signals: [intent]
routing:
  receivers: [webhook-ops]
  default: {receiver: webhook-ops, group_by: [rule, unit], group_wait: 1s}
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the ops console in headless Chromium")


def browser_missing() -> str | None:
    if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
        return "Chromium not installed: run .ci/install-browser"
    return None


@dataclass
class Stack:
    ingest_url: str
    alerts_url: str
    run: str
    processes: dict[str, ManagedProcess]

    def post(self, events: list[dict[str, Any]]) -> None:
        response = httpx.post(f"{self.ingest_url}/v1/feedback", json=events, timeout=10)
        assert response.status_code < 300, response.text

    def api(self, path: str) -> Any:
        response = httpx.get(f"{self.alerts_url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def stack(kafka, clickhouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    if reason := browser_missing():
        pytest.skip(reason)
    run = uuid.uuid4().hex[:8]
    logs = tmp_path_factory.mktemp("console-logs")
    rules = logs / "rules.yaml"
    rules.write_text(RULES)
    ch_settings = ClickHouseSettings(url=clickhouse.url)
    migrate(ch_settings)
    # Own topics and groups so other tests in the session do not interfere.
    topics = {name: f"ksp.console-{run}.{name}" for name in Topics.model_fields}
    cases_topic = f"ksp.console-{run}.cases"
    ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers), [*topics.values(), cases_topic])
    ports = {"ingest": free_port(), "alerts": free_port(), "scoring": free_port()}
    env = {
        **os.environ,
        "KSP_PROFILE": "dev",
        "KSP_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KSP_CLICKHOUSE__URL": clickhouse.url,
        "KSP_PORT": str(ports["ingest"]),
        "KSP_API_PORT": str(ports["alerts"]),
        "KSP_WEB_PORT": str(ports["scoring"]),
        "KSP_CONSUMER_GROUP": f"ksp-console-{run}",
        "KSP_SINK_GROUP": f"ksp-console-sink-{run}",
        "KSP_CASES_TOPIC": cases_topic,
        "KSP_STREAM_QUALITY_INTERVAL_S": "2",
        "KSP_RULES_PATH": str(rules),
        "KSP_LOG__JSON_FORMAT": "true",
        **{f"KSP_TOPICS__{name.upper()}": topic for name, topic in topics.items()},
    }
    processes = {name: ManagedProcess(name, [*KSP, name], env=env, log_path=logs / f"{name}.log")
                 for name in ("ingest", "scoring", "alerts")}
    for process in processes.values():
        process.start()
    result = Stack(f"http://127.0.0.1:{ports['ingest']}", f"http://127.0.0.1:{ports['alerts']}", run, processes)
    try:
        for name, url in [("ingest", result.ingest_url), ("scoring", f"http://127.0.0.1:{ports['scoring']}"),
                          ("alerts", result.alerts_url)]:
            processes[name].wait_ready(lambda url=url: _ready(f"{url}/readyz"), timeout=90)
        yield result
    finally:
        for process in processes.values():
            process.stop(grace=15)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="ksp-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1360, "height": 900}, locale="en-GB", timezone_id="Europe/Berlin")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab with English as the remembered language and console errors collected."""
    tab = browser.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    tab.add_init_script("if (!sessionStorage.getItem('ksp.test')) { sessionStorage.setItem('ksp.test', '1');"
                        " localStorage.setItem('ksp.lang', 'en'); localStorage.setItem('ksp.me', 'tester'); }")
    yield tab
    tab.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def feedback(run: str, i: int, *, unit: str, touchpoint: str = "store", nps: int = 9,
             customer: str | None = None, comment: str | None = None) -> dict[str, Any]:
    from datetime import UTC, datetime

    event: dict[str, Any] = {
        "event_id": f"console-{run}-{unit}-{i}", "occurred_at": datetime.now(UTC).isoformat(),
        "touchpoint": touchpoint, "source": "console-test", "unit": unit, "segment": "private",
        "customer_id": customer or f"c-{run}-{i}",
        "responses": [{"metric": "nps", "value": nps}, {"metric": "csat", "value": 5 if nps >= 9 else 2},
                      {"metric": "ces", "value": 7 if nps >= 9 else 3 if nps >= 7 else 2}],
    }
    if comment:
        event["comment"] = {"text": comment}
    return event

