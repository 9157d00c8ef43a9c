"""The notifier handed over between two alerts workers (real processes, embedded broker, real
HTTP receivers): the worker that owns the notify partition notifies a churn risk and parks a
delivery its receiver refused, then stops. The other worker takes the notify partition over
with the groups and deliveries from the state topic: it lists the parked delivery and replays
it with the same idempotency key, and when the customer's condition clears it sends exactly
one "resolved" for the alert the first worker notified, and no second "firing".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from deploy.embedded.launcher import RunScope, ServiceStack, partitions, wait_until
from deploy.embedded.process import ManagedProcess
from schemas.scored import ScoredEvent
from schemas.topics import Topics
from services.common.settings import KafkaSettings
from tests.alerts.test_delivery import Receiver
from tests.alerts.test_flows import scored
from tests.e2e.conftest import produce_scored

pytestmark = pytest.mark.slow

RULES = """
version: 1
rules:
  - name: churn
    kind: churn_risk
    severity: critical
    signals: [intent]
    resolve: {quiet_for: 14d, on_promoter: true}
routing:
  receivers: [webhook-ops, webhook-park]
  default: {receiver: webhook-ops, group_by: [customer_id], group_wait: 1s, group_interval: 2s}
  routes:
    - {match: {unit: park-unit}, receiver: webhook-park}
"""


@dataclass
class Deployment:
    run: str
    topics: Topics
    kafka: KafkaSettings
    ops: Receiver
    park: Receiver
    processes: dict[str, ManagedProcess]
    urls: dict[str, str]

    def produce(self, *events: ScoredEvent) -> None:
        produce_scored(self.kafka, self.topics.scored, events)

    def parked(self, name: str, *, on_notifier: bool = False) -> list[dict[str, Any]]:
        """What `name` lists as parked (`on_notifier`: nothing unless it is the notifier)."""
        try:
            response = httpx.get(f"{self.urls[name]}/v1/deliveries/parked", timeout=2)
        except httpx.HTTPError:
            return []
        if response.status_code != 200 or (on_notifier and not response.json()["notifier"]):
            return []
        return list(response.json()["deliveries"])


@pytest.fixture
def deployment(kafka, clickhouse, tmp_path) -> Iterator[Deployment]:  # type: ignore[no-untyped-def]
    (tmp_path / "rules.yaml").write_text(RULES)
    scope = RunScope.new("handover")
    ops, park = Receiver().start(), Receiver(fail_first=10**6, fail_status=400).start()
    stack = ServiceStack(kafka.bootstrap_servers, clickhouse.url, tmp_path, scope=scope, env={
        "KSP_CLICKHOUSE_HISTORY": "false", "KSP_RULES_PATH": str(tmp_path / "rules.yaml"),
        "KSP_TICK_INTERVAL_S": "0.2",
        "KSP_RECEIVERS": json.dumps({"webhook-ops": {"type": "webhook", "url": f"{ops.url}/hook"},
                                     "webhook-park": {"type": "webhook", "url": f"{park.url}/hook"}}),
    })
    for n in (1, 2):
        stack.add(f"alerts-{n}", "alerts")
    urls = {name: service.url for name, service in stack.services.items()}
    try:
        stack.start(timeout=60)
        wait_until(lambda: all(partitions(url) > 0 for url in urls.values()), 60,
                   "both alerts workers to own partitions", stack.processes)
        yield Deployment(scope.run, scope.topics, KafkaSettings(bootstrap_servers=kafka.bootstrap_servers),
                         ops, park, stack.processes, urls)
    finally:
        stack.stop()
        ops.stop()
        park.stop()


def test_the_next_notifier_resolves_what_the_stopped_one_notified_and_replays_its_parked_delivery(
    deployment: Deployment,
) -> None:
    d = deployment
    at = datetime.now(UTC) - timedelta(minutes=5)
    customer, parked_customer = f"{d.run}-stays", f"{d.run}-parked"
    d.produce(scored(f"{d.run}-1", at, customer=customer, unit="u1", nps=1, churn_intent=True),
              scored(f"{d.run}-2", at, customer=parked_customer, unit="park-unit", nps=1, churn_intent=True))

    def for_customer(receiver: Receiver, cid: str) -> list[dict[str, Any]]:
        return [r["json"] for r in receiver.requests
                if any(a["labels"].get("customer_id") == cid for a in r["json"]["alerts"])]

    [firing] = wait_until(lambda: for_customer(d.ops, customer), 60, "the firing notification", d.processes)
    owner = wait_until(lambda: next((n for n in d.urls if d.parked(n, on_notifier=True)), None), 60,
                       "the parked delivery on the notifier", d.processes)
    [parked] = d.parked(owner)
    other = next(n for n in d.urls if n != owner)
    # the other worker lists it too (read from the state topic) but leaves the replay to the notifier
    [seen] = wait_until(lambda: d.parked(other), 30, "the parked delivery listed by the other worker", d.processes)
    assert (seen["delivery_id"], seen["idempotency_key"]) == (parked["delivery_id"], parked["idempotency_key"])
    refused = httpx.post(f"{d.urls[other]}/v1/deliveries/parked/{parked['delivery_id']}/replay", timeout=5)
    assert refused.status_code == 409 and refused.json()["type"].endswith("not-the-notifier")
    assert len(d.park.requests) == 1  # nothing was sent again

    d.processes[owner].stop(grace=15)
    listed = wait_until(lambda: d.parked(other, on_notifier=True), 60, "the parked delivery on the next notifier",
                        d.processes)
    assert [(p["delivery_id"], p["idempotency_key"]) for p in listed] == [
        (parked["delivery_id"], parked["idempotency_key"])]
    d.park.fail_first = 0
    replay = httpx.post(f"{d.urls[other]}/v1/deliveries/parked/{parked['delivery_id']}/replay", timeout=5)
    assert replay.status_code == 202
    wait_until(lambda: len(d.park.requests) == 2, 30, "the replayed delivery", d.processes)
    assert {r["headers"]["idempotency-key"] for r in d.park.requests} == {parked["idempotency_key"]}

    # the condition clears (a promoter): detected and notified by the worker left
    d.produce(scored(f"{d.run}-3", at + timedelta(minutes=1), customer=customer, unit="u1", nps=10))
    wait_until(lambda: len(for_customer(d.ops, customer)) >= 2, 60, "the resolved notification", d.processes)
    time.sleep(3)  # further group intervals: nothing more may come (absence check)
    sent = for_customer(d.ops, customer)
    assert [n["status"] for n in sent] == ["firing", "resolved"]
    assert sent[1]["group_key"] == firing["group_key"]
    assert sent[1]["alerts"][0]["alert_id"] == firing["alerts"][0]["alert_id"]
