"""Two alerts workers in one consumer group, as real processes on the embedded broker, give the
alerts one worker gives: a unit's NPS drop is alerted once, each customer at risk once (the
same conditions one evaluator finds in the same events), and the drop inhibits the unit's
customer alerts even when the other worker raised them. Every worker lists every case (the
cases table), sees the other's changes and gets them all back after a restart.

Scored events are produced straight to the scored topic, keyed by event id as the scoring
service keys them, so each worker consumes about half of every scope's and customer's events
there; only the repartitioning brings them together.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer

from deploy.embedded.launcher import RunScope, ServiceStack, http_ok, partitions, wait_until
from deploy.embedded.process import ManagedProcess
from schemas.alert import Alert, AlertStatus
from schemas.scored import ScoredEvent
from schemas.topics import Topics
from services.alerts.flows import AlertEvaluator
from services.alerts.rules import parse
from services.common.kafka import security_config
from services.common.settings import KafkaSettings
from tests.alerts.test_delivery import Receiver
from tests.alerts.test_flows import DROPPED, IN_CONTROL, run, scored
from tests.e2e.conftest import listed_cases, produce_scored

pytestmark = pytest.mark.slow

RULES = """
version: 1
defaults:
  scopes: [[touchpoint, unit]]
rules:
  - name: nps-drop
    kind: aggregate_drop
    metric: nps
    min_n: 30
    params: {shift: 20, warmup_n: 400, block_n: 50, hold_n: 100, arl0: 20000}
    resolve: {quiet_n: 600, quiet_for: 30d, reset_fraction: 0.5}
  - name: churn
    kind: churn_risk
    severity: critical
    signals: [intent, repeated]
    params: {window: 30d, min_negative: 3, min_touchpoints: 2, cooldown: 30d}
    resolve: {quiet_for: 14d, on_promoter: true}
routing:
  receivers: [webhook-ops]
  default: {receiver: webhook-ops, group_by: [rule, unit], group_wait: 1s, group_interval: 2s}
  inhibit:
    - source: {kind: aggregate_drop}
      target: {kind: churn_risk}
      equal: [unit]
"""


@dataclass
class Workers:
    run: str
    topics: Topics
    kafka: KafkaSettings
    webhook: Receiver
    processes: dict[str, ManagedProcess]
    urls: dict[str, str]

    def produce(self, events: list[ScoredEvent]) -> None:
        produce_scored(self.kafka, self.topics.scored, events)

    def notified(self, kind: str, status: str = "firing") -> list[dict[str, Any]]:
        """Every alert of this kind in the webhook's notifications (one entry per notification)."""
        return [a for r in self.webhook.requests for a in r["json"]["alerts"]
                if a["kind"] == kind and a["status"] == status]


@pytest.fixture(scope="module")
def workers(kafka, clickhouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("alerts-scaleout")
    (root / "rules.yaml").write_text(RULES)
    scope = RunScope.new("scaleout")
    webhook = Receiver().start()
    stack = ServiceStack(kafka.bootstrap_servers, clickhouse.url, root, scope=scope, env={
        "KSP_RULES_PATH": str(root / "rules.yaml"), "KSP_TICK_INTERVAL_S": "0.2",
        "KSP_RECEIVERS": json.dumps({"webhook-ops": {"type": "webhook", "url": f"{webhook.url}/hook"}}),
    })
    for n in (1, 2):
        stack.add(f"alerts-{n}", "alerts")
    try:
        stack.start(timeout=60)
        urls = [service.url for service in stack.services.values()]
        wait_until(lambda: all(partitions(url) > 0 for url in urls), 60,
                   "both alerts workers to own partitions", stack.processes)
        yield Workers(scope.run, scope.topics, KafkaSettings(bootstrap_servers=kafka.bootstrap_servers), webhook,
                      stack.processes, {name: service.url for name, service in stack.services.items()})
    finally:
        stack.stop()
        webhook.stop()


def _alerts_on_topic(kafka: KafkaSettings, topic: str) -> Callable[[], list[Alert]]:
    consumer = KafkaConsumer(topic, **security_config(kafka), auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=500)
    seen: list[Alert] = []

    def read() -> list[Alert]:
        for records in consumer.poll(timeout_ms=500).values():
            seen.extend(Alert.model_validate_json(r.value) for r in records)
        return seen

    return read


def test_two_workers_alert_each_drop_and_each_customer_once_as_one_worker_would(workers: Workers) -> None:
    start = datetime.now(UTC) - timedelta(hours=3)

    def at(i: int) -> datetime:
        return start + timedelta(seconds=5 * i)

    rng = random.Random(5)
    drop = [scored(f"{workers.run}-d{i}", at(i), unit="drop-unit", nps=_answer(rng, IN_CONTROL if i < 900 else DROPPED))
            for i in range(1300)]
    # three negative experiences across two touchpoints each (repeated-negative churn risk)
    churn = [scored(f"{workers.run}-c{c}-{j}", at(1300 + 3 * c + j), touchpoint=tp, unit=unit, nps=2,
                    customer=f"{unit}-c{c}")
             for c, unit in enumerate(["churn-unit"] * 4 + ["drop-unit"] * 4)
             for j, tp in enumerate(("web", "store", "web"))]
    expected = [a for a in run(AlertEvaluator(parse(RULES)), drop + churn) if a.status is AlertStatus.firing]
    assert {a.kind.value for a in expected} == {"aggregate_drop", "churn_risk"}
    assert len(expected) == 1 + 8

    read = _alerts_on_topic(workers.kafka, workers.topics.alerts)
    workers.produce(drop)
    wait_until(lambda: workers.notified("aggregate_drop"), 60, "the unit's drop notification", workers.processes)
    workers.produce(churn)
    wait_until(lambda: len([a for a in read() if a.status is AlertStatus.firing]) >= len(expected), 60,
               "every alert on the alerts topic", workers.processes)
    wait_until(lambda: len(workers.notified("churn_risk")) >= 4, 30, "the churn notifications", workers.processes)
    time.sleep(3)  # a further group_interval: nothing more may come (absence check)

    # every condition one evaluator finds, alerted exactly once (not once per worker, none missing)
    fired = Counter((a.kind.value, a.fingerprint) for a in read() if a.status is AlertStatus.firing)
    assert fired == Counter((a.kind.value, a.fingerprint) for a in expected)
    # notified once each; the dropping unit's customers are inhibited by the unit's drop
    assert [a["labels"]["unit"] for a in workers.notified("aggregate_drop")] == ["drop-unit"]
    customers = Counter(a["labels"]["customer_id"] for a in workers.notified("churn_risk"))
    assert customers == Counter({f"churn-unit-c{c}": 1 for c in range(4)})


def test_every_worker_lists_every_case_sees_the_others_changes_and_gets_them_back_after_a_restart(
        workers: Workers) -> None:
    first, second = workers.urls["alerts-1"], workers.urls["alerts-2"]
    wait_until(lambda: len(listed_cases(first)) >= 9 and listed_cases(first) == listed_cases(second), 30,
               "both workers to list the same cases", workers.processes)
    case_id = min(listed_cases(first))
    # a change through one worker's API is seen on the other
    ack = httpx.post(f"{second}/v1/alerts/{case_id}/acknowledge", json={"by": "ana"}, timeout=5)
    assert ack.status_code == 200, ack.text
    wait_until(lambda: listed_cases(first).get(case_id, ("", 0))[0] == "acknowledged", 10,
               "the other worker to show the acknowledgement", workers.processes)
    comment = httpx.post(f"{first}/v1/alerts/{case_id}/comments", json={"by": "ben", "note": "called back"},
                         timeout=5)
    assert comment.status_code in (200, 201), comment.text
    wait_until(lambda: listed_cases(second) == listed_cases(first), 10, "the comment on both workers", workers.processes)

    before = listed_cases(second)
    restarted = workers.processes["alerts-1"]
    restarted.stop(grace=15)
    restarted.start()
    restarted.wait_ready(lambda: http_ok(f"{first}/readyz"), timeout=90)
    assert listed_cases(first) == before  # everything back from the cases table at once, nothing lost
    assert listed_cases(first)[case_id] == ("acknowledged", before[case_id][1])


def _answer(rng: random.Random, rates: tuple[float, float, float]) -> int:
    u = rng.random()
    return 10 if u < rates[0] else (2 if u >= 1 - rates[2] else 7)
