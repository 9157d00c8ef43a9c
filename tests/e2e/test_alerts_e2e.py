"""End to end, all services as processes: a burst of detractors stating they will cancel, for
several customers of one unit, becomes exactly one churn-risk alert (case) per customer and one
grouped incident for the unit at the webhook within 5 s of the triggering event; it resolves
when those customers post promoter scores, and the closed loop counts them as recovered. The
cases are kept in the Faust table `cases` (one record per case on its changelog), survive a
restart, and an empty table is rebuilt from the cases topic."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from deploy.embedded.launcher import RunScope, ServiceStack, http_ok, wait_until
from deploy.embedded.process import ManagedProcess
from tests.alerts.test_delivery import Receiver
from tests.chaos.harness import read_topic
from tests.e2e.conftest import listed_cases
from tests.metrics import value

# The built-in rules, with churn risk grouped per unit: one incident per unit, collecting the
# customers' alerts for 1 s (group_wait) before the first notification.
RULES = """
version: 1
rules:
  - name: churn-risk
    kind: churn_risk
    severity: critical
    signals: [intent]
    resolve: {quiet_for: 14d, on_promoter: true}
routing:
  receivers: [webhook-ops]
  default: {receiver: webhook-ops, group_by: [rule, touchpoint, unit], group_wait: 30s}
  routes:
    - name: churn-per-unit
      match: {kind: churn_risk}
      receiver: webhook-ops
      group_by: [rule, unit]
      group_wait: 1s
      group_interval: 2s
      repeat_interval: 24h
"""


@dataclass
class AlertsStack:
    ingest_url: str
    alerts_url: str
    webhook: Receiver
    processes: dict[str, ManagedProcess]


@pytest.fixture(scope="module")
def stack(kafka, clickhouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertsStack]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("alerts-e2e")
    rules = root / "rules.yaml"
    rules.write_text(RULES)
    webhook = Receiver().start()
    stack = ServiceStack(kafka.bootstrap_servers, clickhouse.url, root, scope=RunScope.new("e2e"))
    stack.add("ingest")
    stack.add("scoring")
    stack.add("alerts", env={
        "KSP_RULES_PATH": str(rules), "KSP_TICK_INTERVAL_S": "0.2",
        "KSP_RECEIVERS": json.dumps({"webhook-ops": {"type": "webhook", "url": f"{webhook.url}/hook",
                                                     "secret": "e2e-secret"}})})
    try:
        stack.start(timeout=90)
        yield AlertsStack(stack["ingest"].url, stack["alerts"].url, webhook, stack.processes)
    finally:
        stack.stop()
        webhook.stop()


def feedback(customer: str, unit: str, nps: int, comment: str) -> dict[str, Any]:
    return {"event_id": f"e2e-{uuid.uuid4()}", "occurred_at": datetime.now(UTC).isoformat(),
            "touchpoint": "call_centre", "source": "alerts-e2e", "unit": unit, "customer_id": customer,
            "responses": [{"metric": "nps", "value": nps}], "comment": {"text": comment}}


CANCEL = ["Ich kündige meinen Vertrag, der Service war eine Katastrophe.",
          "Terrible service, I will cancel my contract and switch to another provider."]


def notifications_for(stack: AlertsStack, unit: str, status: str | None = None) -> list[dict[str, Any]]:
    return [r for r in stack.webhook.requests
            if any(a["labels"].get("unit") == unit for a in r["json"]["alerts"])
            and (status is None or r["json"]["status"] == status)]


def test_a_burst_of_cancelling_detractors_is_one_incident_per_unit_and_one_case_per_customer(stack: AlertsStack) -> None:
    unit = f"unit-{uuid.uuid4().hex[:6]}"
    customers = [f"{unit}-c{i}" for i in range(4)]
    burst = [feedback(c, unit, nps, CANCEL[(i + j) % 2]) for i, c in enumerate(customers) for j, nps in enumerate((1, 3))]
    posted = time.monotonic()
    response = httpx.post(f"{stack.ingest_url}/v1/feedback", json=burst, timeout=10)
    assert response.status_code == 202, response.text

    first = wait_until(lambda: notifications_for(stack, unit, "firing"), timeout=30, what="the unit's incident")[0]
    latency = first["at"] - posted
    print(f"first notification of the unit's incident {latency:.2f} s after the burst was posted")
    assert latency < 5.0, f"first notification {latency:.2f} s after the burst"
    body = first["json"]
    assert body["receiver"] == "webhook-ops" and body["group_labels"].get("unit") == unit
    assert first["headers"]["idempotency-key"] == body["idempotency_key"]
    assert first["headers"]["x-ksp-signature"].startswith("sha256=")

    # every customer's alert reached the webhook, all in the unit's one group, one alert id each
    def alert_ids() -> dict[str, set[str]]:
        ids: dict[str, set[str]] = {}
        for request in notifications_for(stack, unit, "firing"):
            for alert in request["json"]["alerts"]:
                ids.setdefault(alert["labels"]["customer_id"], set()).add(alert["alert_id"])
        return ids

    wait_until(lambda: set(alert_ids()) == set(customers), timeout=10, what="every customer's alert")
    assert all(len(ids) == 1 for ids in alert_ids().values()), alert_ids()
    assert len({r["json"]["group_key"] for r in notifications_for(stack, unit)}) == 1
    assert all(a["kind"] == "churn_risk" for r in notifications_for(stack, unit) for a in r["json"]["alerts"])

    cases = httpx.get(f"{stack.alerts_url}/v1/alerts", params={"unit": unit}, timeout=5).json()["cases"]
    assert sorted(c["alert"]["labels"]["customer_id"] for c in cases) == customers  # one case per customer
    assert {c["state"] for c in cases} == {"firing"} and {c["alert"]["kind"] for c in cases} == {"churn_risk"}

    # scores recover: promoters from every customer resolve the incident and count as recovered
    promoters = [feedback(c, unit, 10, "Alles wieder gut, danke für den Rückruf!") for c in customers]
    assert httpx.post(f"{stack.ingest_url}/v1/feedback", json=promoters, timeout=10).status_code == 202
    resolved = wait_until(lambda: notifications_for(stack, unit, "resolved"), timeout=30, what="the resolution")
    assert {a["labels"]["customer_id"] for r in resolved for a in r["json"]["alerts"]} == set(customers)
    assert all(a["status"] == "resolved" for r in resolved for a in r["json"]["alerts"])

    def settled() -> list[dict[str, Any]]:
        cases = httpx.get(f"{stack.alerts_url}/v1/alerts", params={"unit": unit}, timeout=5).json()["cases"]
        return cases if all(c["condition_cleared"] and c["recovered"] is True for c in cases) else []

    wait_until(settled, timeout=15, what="cases cleared and recovered")
    recovery = httpx.get(f"{stack.alerts_url}/v1/recovery", params={"unit": unit}, timeout=5).json()
    assert (recovery["churn_cases"], recovery["followed_up"], recovery["recovered"], recovery["rate"]) == (4, 4, 4, 1.0)
    # the worker read each of its case writes back from the cases table's changelog: none is
    # waiting to be written again
    wait_until(lambda: scraped(stack.alerts_url, "ksp_alerts_case_table_unconfirmed_writes") == 0, 10,
               "every case write read back")
    assert scraped(stack.alerts_url, "ksp_alerts_case_table_rewrites_total") == 0


def test_cases_and_silences_survive_a_restart_of_the_alerts_service(stack: AlertsStack) -> None:
    before = httpx.get(f"{stack.alerts_url}/v1/alerts", timeout=5).json()["cases"]
    assert before, "the previous test opened cases"
    silence = httpx.post(f"{stack.alerts_url}/v1/silences", timeout=5, json={
        "matchers": {"unit": "refit"}, "created_by": "ana", "duration_s": 3600}).json()
    alerts = stack.processes["alerts"]
    alerts.stop(grace=15)
    alerts.start()
    alerts.wait_ready(lambda: http_ok(f"{stack.alerts_url}/readyz"), timeout=90)
    after = httpx.get(f"{stack.alerts_url}/v1/alerts", timeout=5).json()["cases"]
    strip = lambda cases: sorted((c["case_id"], c["state"], c["events"], c["recovered"]) for c in cases)
    assert strip(after) == strip(before)
    silences = httpx.get(f"{stack.alerts_url}/v1/silences", timeout=5).json()["silences"]
    assert [s["silence_id"] for s in silences] == [silence["silence_id"]]  # kept on the state topic


def _changelog(bootstrap: str, topic: str) -> dict[str, dict[str, Any] | None]:
    """The latest case per key on the cases table's changelog (a value is the case's JSON as a JSON
    string; None: deleted)."""
    return {json.loads(r.key): json.loads(json.loads(r.value)) if r.value is not None else None
            for r in read_topic(bootstrap, topic)}  # in offset order per key's partition: the latest wins


def test_the_cases_are_kept_in_a_faust_table_one_record_per_case(stack: AlertsStack, kafka) -> None:  # type: ignore[no-untyped-def]
    group = stack.processes["alerts"].env["KSP_CONSUMER_GROUP"]  # type: ignore[index]
    table = _changelog(kafka.bootstrap_servers, f"{group}-cases-changelog")
    kept = {case_id: (case["state"], len(case["history"])) for case_id, case in table.items() if case}
    assert kept == listed_cases(stack.alerts_url) and len(kept) >= 4


def test_an_empty_cases_table_is_rebuilt_from_the_cases_topic(stack: AlertsStack, kafka) -> None:  # type: ignore[no-untyped-def]
    before = listed_cases(stack.alerts_url)
    alerts = stack.processes["alerts"]
    alerts.stop(grace=15)
    fresh = f"{alerts.env['KSP_CONSUMER_GROUP']}-fresh"  # type: ignore[index]
    alerts.env = {**(alerts.env or {}), "KSP_CONSUMER_GROUP": fresh}  # a new group: a new, empty table
    alerts.start()
    alerts.wait_ready(lambda: http_ok(f"{stack.alerts_url}/readyz"), timeout=90)
    assert listed_cases(stack.alerts_url) == before
    rebuilt = _changelog(kafka.bootstrap_servers, f"{fresh}-cases-changelog")
    assert {case_id: (case["state"], len(case["history"])) for case_id, case in rebuilt.items() if case} == before


def scraped(url: str, name: str) -> float | None:
    return value(httpx.get(f"{url}/metrics", timeout=5).text, name)
