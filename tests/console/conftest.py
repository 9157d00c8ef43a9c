"""Browser tests of the ops console: real stack as processes, headless Chromium via Playwright.

Skipped (with the reason) when Chromium or Playwright is missing: run `.ci/install-browser`.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.embedded.launcher import RunScope, ServiceStack
from deploy.embedded.process import ManagedProcess

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


@pytest.fixture(scope="module")
def stack(kafka, clickhouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    if reason := browser_missing():
        pytest.skip(reason)
    logs = tmp_path_factory.mktemp("console-logs")
    rules = logs / "rules.yaml"
    rules.write_text(RULES)
    # Own topics and groups so other tests in the session do not interfere.
    scope = RunScope.new("ksp-console")
    services = ServiceStack(kafka.bootstrap_servers, clickhouse.url, logs, scope=scope,
                            env={"KSP_STREAM_QUALITY_INTERVAL_S": "2", "KSP_RULES_PATH": str(rules)})
    for name in ("ingest", "scoring", "alerts"):
        services.add(name)
    try:
        services.start(timeout=90)
        yield Stack(services["ingest"].url, services["alerts"].url, scope.run, services.processes)
    finally:
        services.stop()


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

