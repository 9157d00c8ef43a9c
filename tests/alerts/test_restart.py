"""The alerts runtime across a restart, on the real broker with a real local HTTP receiver: a
worker parks a delivery, has one in flight, notifies a firing alert and gets a silence; it
stops and a new worker starts on the same topics. Nothing is lost or sent twice: the parked
delivery is listed and replayable (same idempotency key), the one in flight resumes (same key),
the delivered one is not re-sent, the silence is active, and the firing alert is not notified
again but resolves exactly once. SLA breaches are escalated exactly once, restart or not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from schemas.topics import Topics
from services.alerts.api import build_api
from services.alerts.app import replay_state
from services.alerts.cases.log import replay_topic
from services.alerts.delivery.outbox import Outbox
from services.alerts.delivery.webhook import WebhookChannel
from services.alerts.flows import AlertEvaluator
from services.alerts.metrics import AlertsMetrics
from services.alerts.notify import Notifier
from services.alerts.rules import load_rules
from services.alerts.service import AlertsRuntime
from services.alerts.settings import AlertsSettings
from services.alerts.state.durable import Restored
from services.alerts.state.log import StateLog
from services.common.kafka import aiokafka_config, ensure_topics
from services.common.settings import KafkaSettings
from tests.alerts.test_api import scored_event
from tests.alerts.test_delivery import Receiver


class Clock:
    """Wall time plus a shift the test moves forward (group intervals, SLAs)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class Worker:
    runtime: AlertsRuntime
    restored: Restored
    api: httpx.AsyncClient
    close: Callable[[float], Any]

    async def feed(self, *events: Any) -> None:
        await self.runtime.handle([e.model_dump_json().encode() for e in events])

    async def wait(self, condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if value := condition():
                return value
            await self.runtime.tick()
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


def new_settings(kafka: Any, **overrides: Any) -> AlertsSettings:
    suffix = uuid.uuid4().hex[:8]
    settings = AlertsSettings(kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap_servers),
                              topics=Topics(alerts=f"test.alerts.{suffix}"), cases_topic=f"test.cases.{suffix}",
                              clickhouse_history=False, rebuild_timeout_s=30, **overrides)
    ensure_topics(settings.kafka, [settings.topics.alerts, settings.cases_topic, settings.state_topic_name()],
                  configs={"cleanup.policy": "compact"})
    return settings


async def start_worker(settings: AlertsSettings, receiver: Receiver, clock: Clock) -> Worker:
    """What AlertsService.on_start does: rebuild the cases, replay the state topic, restore."""
    producer = AIOKafkaProducer(**aiokafka_config(settings.kafka), enable_idempotence=False)
    await producer.start()
    client = httpx.AsyncClient(timeout=2)

    def publisher(topic: str) -> Any:
        async def send(*, key: bytes, value: bytes | None, headers: Any = None) -> Any:
            return await producer.send(topic, value, key=key)  # the acknowledgement
        return send

    rules = load_rules(None)
    outbox = Outbox({"webhook-ops": WebhookChannel(client, "webhook-ops", f"{receiver.url}/hook")},
                    attempts=100, backoff_s=0.1, backoff_max_s=0.1)
    registry = CollectorRegistry()
    runtime = AlertsRuntime(settings, evaluator=AlertEvaluator(rules), notifier=Notifier(rules.routing),
                            outbox=outbox, metrics=AlertsMetrics(registry),
                            publish_alert=publisher(settings.topics.alerts),
                            publish_case=publisher(settings.cases_topic),
                            state_log=StateLog(publisher(settings.state_topic_name())), clock=clock)
    runtime.cases.rebuild(await replay_topic(settings.kafka, settings.cases_topic, 30))
    records = await replay_state(settings)
    restored = runtime.restore(records)
    runtime.started.set()
    api = httpx.AsyncClient(transport=httpx.ASGITransport(build_api(runtime, registry, ready=lambda: (True, 1),
                                                                    clickhouse=lambda: None)),
                            base_url="http://alerts")

    async def close(timeout: float) -> None:
        await runtime.flush(timeout)
        await outbox.close()
        await api.aclose()
        await client.aclose()
        await producer.stop()

    return Worker(runtime, restored, api, close)


def sent_for(receiver: Receiver, customer: str) -> list[dict[str, Any]]:
    return [r for r in receiver.requests
            if any(a["labels"].get("customer_id") == customer for a in r["json"]["alerts"])]


def test_parked_pending_silences_and_firing_alerts_survive_a_restart(kafka) -> None:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:6]
    parked_c, firing_c, pending_c, quiet_unit = f"park-{run}", f"fire-{run}", f"pend-{run}", f"quiet-{run}"
    settings = new_settings(kafka)
    receiver = Receiver(fail_first=1, fail_status=400).start()
    clock = Clock()

    async def scenario() -> None:
        first = await start_worker(settings, receiver, clock)
        assert first.restored == Restored(silences=0, groups=0, firing=0, parked=0, resumed=0)
        await first.feed(scored_event(parked_c, "berlin", 1, churn=True))
        parked = await first.wait(lambda: first.runtime.outbox.parked(), "the 400 to park the delivery")
        receiver.fail_first = 0
        await first.feed(scored_event(firing_c, "hamburg", 1, churn=True))
        await first.wait(lambda: sent_for(receiver, firing_c), "the firing notification")
        receiver.fail_status, receiver.fail_first = 503, 10**6
        await first.feed(scored_event(pending_c, "munich", 1, churn=True))
        await first.wait(lambda: sent_for(receiver, pending_c), "a failed attempt of the pending delivery")
        silence = (await first.api.post("/v1/silences", json={"matchers": {"unit": quiet_unit},
                                                               "created_by": "ana", "duration_s": 3600})).json()
        await first.close(0.2)  # the pending delivery is still retrying: cut off
        receiver.fail_first = 0
        before = {c: [r["headers"]["idempotency-key"] for r in sent_for(receiver, c)]
                  for c in (parked_c, firing_c, pending_c)}

        def before_alert_id(customer: str) -> str:
            return str(sent_for(receiver, customer)[0]["json"]["alerts"][0]["alert_id"])

        second = await start_worker(settings, receiver, clock)
        # detectors: 3 units x 2 scope levels x the 3 drop rules these events have values for
        # (NPS, detractor share, sentiment), their observations buffered at the stop, + the theme
        # surge's scopes (the touchpoint and its 3 units); histories: the 3 customers' churn histories
        assert second.restored == Restored(silences=1, groups=3, firing=3, parked=1, resumed=1, detectors=18 + 4,
                                           histories=3)
        # the pending delivery resumes with its key; the delivered one is not sent again
        await second.wait(lambda: len(sent_for(receiver, pending_c)) > len(before[pending_c]), "the resumed delivery")
        assert {r["headers"]["idempotency-key"] for r in sent_for(receiver, pending_c)} == {before[pending_c][0]}
        # the parked delivery is listed and replays with its key
        listed = (await second.api.get("/v1/deliveries/parked")).json()["deliveries"]
        assert [d["delivery_id"] for d in listed] == [parked[0].delivery_id]
        assert listed[0]["idempotency_key"] == before[parked_c][0] and "HTTP 400" in listed[0]["error"]
        assert (await second.api.post(f"/v1/deliveries/parked/{parked[0].delivery_id}/replay")).status_code == 202
        await second.wait(lambda: len(sent_for(receiver, parked_c)) == 2, "the replayed delivery")
        assert [r["headers"]["idempotency-key"] for r in sent_for(receiver, parked_c)] == before[parked_c] * 2
        assert (await second.api.get("/v1/deliveries/parked")).json()["count"] == 0
        # the silence is still active
        assert [s["silence_id"] for s in (await second.api.get("/v1/silences")).json()["silences"]] \
            == [silence["silence_id"]]
        await second.feed(scored_event(f"{quiet_unit}-c", quiet_unit, 0, churn=True))
        # the firing alert: not notified again as new, then resolved exactly once
        await second.feed(scored_event(firing_c, "hamburg", 0, churn=True))
        clock.shift += timedelta(minutes=2)  # past the churn route's group_interval (1 m)
        for _ in range(5):
            await second.runtime.tick()
        await second.runtime.outbox.drain(5)
        assert len(sent_for(receiver, firing_c)) == 1
        assert [c.alert.alert_id for c in second.runtime.cases.cases.values()
                if c.alert.labels.get("customer_id") == firing_c] == [before_alert_id(firing_c)]
        await second.feed(scored_event(firing_c, "hamburg", 10))  # a promoter: the condition clears
        clock.shift += timedelta(minutes=2)
        resolved = await second.wait(lambda: sent_for(receiver, firing_c)[1:], "the resolved notification")
        [firing_n] = sent_for(receiver, firing_c)[:1]
        assert [r["json"]["status"] for r in resolved] == ["resolved"]
        assert resolved[0]["json"]["group_key"] == firing_n["json"]["group_key"]
        assert resolved[0]["json"]["alerts"][0]["alert_id"] == firing_n["json"]["alerts"][0]["alert_id"]
        clock.shift += timedelta(minutes=2)
        for _ in range(5):
            await second.runtime.tick()
        await second.runtime.outbox.drain(5)
        assert len(sent_for(receiver, firing_c)) == 2
        assert sent_for(receiver, f"{quiet_unit}-c") == []
        await second.close(2)

    try:
        asyncio.run(scenario())
    finally:
        receiver.stop()


def test_an_sla_breach_is_escalated_once_also_across_a_restart(kafka) -> None:  # type: ignore[no-untyped-def]
    customer = f"sla-{uuid.uuid4().hex[:6]}"
    settings = new_settings(kafka, sla_critical_s=600.0)
    receiver = Receiver().start()
    clock = Clock()

    def escalations() -> list[dict[str, Any]]:
        return [r for r in sent_for(receiver, customer) if "escalation" in r["json"]]

    async def scenario() -> None:
        first = await start_worker(settings, receiver, clock)
        await first.feed(scored_event(customer, "berlin", 1, churn=True))
        await first.wait(lambda: sent_for(receiver, customer), "the firing notification")
        [case] = [c for c in first.runtime.cases.cases.values() if c.alert.labels["customer_id"] == customer]
        for _ in range(3):
            await first.runtime.tick()
        assert escalations() == []  # within the SLA
        clock.shift += timedelta(minutes=11)
        [escalation] = await first.wait(escalations, "the escalation")
        body = escalation["json"]
        assert body["receiver"] == "webhook-ops" and body["escalation"]["case_id"] == case.case_id
        assert float(body["escalation"]["overdue_s"]) >= 60
        assert first.runtime.cases.get(case.case_id).escalated
        for _ in range(5):
            await first.runtime.tick()
        await first.close(2)

        second = await start_worker(settings, receiver, clock)
        clock.shift += timedelta(minutes=5)
        for _ in range(5):
            await second.runtime.tick()
        await second.runtime.outbox.drain(5)
        assert len(escalations()) == 1
        assert [e.action.value for e in second.runtime.cases.get(case.case_id).history].count("escalated") == 1
        await second.close(2)

    try:
        asyncio.run(scenario())
    finally:
        receiver.stop()
