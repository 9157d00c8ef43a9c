"""The alerts API over real HTTP (uvicorn) on the runtime with the real evaluator, the real
broker (alerts and cases topics) and ClickHouse (history, quality, timelines), and real local
receivers: the case lifecycle, problem+json errors, filters, silences, parked deliveries and
replay, recovery rate, quality and timeline for the console, and the event stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from deploy.embedded.process import free_port
from schemas.feedback import FeedbackEvent
from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel, TextAnalysis
from schemas.topics import Topics
from services.alerts.api import build_api
from services.alerts.cases.log import HistoryWriter, replay_topic
from services.alerts.delivery.outbox import Outbox
from services.alerts.delivery.webhook import WebhookChannel
from services.alerts.flows import AlertEvaluator
from services.alerts.metrics import AlertsMetrics
from services.alerts.notify import Notifier
from services.alerts.rules import load_rules
from services.alerts.service import AlertsRuntime
from services.alerts.settings import AlertsSettings
from services.common.clickhouse import connect, migrate
from services.common.kafka import aiokafka_config, ensure_topics
from services.common.settings import ClickHouseSettings, KafkaSettings
from tests.alerts.test_delivery import Receiver

PROBLEM = "application/problem+json"


def scored_event(customer: str, unit: str, nps: int, *, churn: bool = False, event_id: str | None = None,
                 at: datetime | None = None, sqi: float | None = None) -> ScoredEvent:
    at = at or datetime.now(UTC)
    event = FeedbackEvent.model_validate({
        "event_id": event_id or f"e-{uuid.uuid4().hex[:10]}", "occurred_at": at.isoformat(),
        "touchpoint": "store", "source": "api-test", "unit": unit, "customer_id": customer,
        "responses": [{"metric": "nps", "value": nps}],
        "comment": {"text": "Ich kündige." if churn else "Prima."}})
    category = NpsCategory.detractor if nps <= 6 else NpsCategory.passive if nps <= 8 else NpsCategory.promoter
    text = TextAnalysis(language="de", sentiment=-0.8 if churn else 0.8,
                        sentiment_label=SentimentLabel.negative if churn else SentimentLabel.positive,
                        churn_intent=churn)
    return ScoredEvent(event=event, scorer_version="test", accepted_at=at, scored_at=at, nps=nps,
                       nps_category=category, text=text, churn_intent=churn, sqi=sqi)


def engine() -> tuple[Any, Any]:
    rules = load_rules(None)
    return AlertEvaluator(rules), Notifier(rules.routing)


@dataclass
class Harness:
    url: str
    runtime: AlertsRuntime
    settings: AlertsSettings
    receiver: Receiver
    http: httpx.AsyncClient

    async def feed(self, *events: ScoredEvent) -> None:
        await self.runtime.handle([e.model_dump_json().encode() for e in events])

    async def wait(self, condition: Any, timeout: float = 10.0, what: str = "condition") -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            value = condition()
            if value:
                return value
            await self.runtime.tick()
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def delivered_for(self, customer: str) -> list[dict[str, Any]]:
        return [r for r in self.receiver.requests
                if any(a["labels"].get("customer_id") == customer for a in r["json"]["alerts"])]


@asynccontextmanager
async def harness(kafka: Any, clickhouse: Any, fail_first: int = 0) -> AsyncIterator[Harness]:
    suffix = uuid.uuid4().hex[:8]
    ch = ClickHouseSettings(url=clickhouse.url)
    migrate(ch)
    port = free_port()
    settings = AlertsSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap_servers), clickhouse=ch,
        topics=Topics(alerts=f"test.alerts.{suffix}"), cases_topic=f"test.cases.{suffix}", api_port=port,
        stream_quality_interval_s=0.5)
    await asyncio.to_thread(ensure_topics, settings.kafka, [settings.topics.alerts, settings.cases_topic])
    receiver = Receiver(fail_first=fail_first).start()
    producer = AIOKafkaProducer(**aiokafka_config(settings.kafka), enable_idempotence=False)
    await producer.start()
    client = httpx.AsyncClient(timeout=5)

    async def publisher(topic: str) -> Any:
        async def send(*, key: bytes, value: bytes, headers: Any = None) -> Any:
            return await producer.send(topic, value, key=key)  # the acknowledgement
        return send

    evaluator, notifier = engine()
    registry = CollectorRegistry()
    outbox = Outbox({"webhook-ops": WebhookChannel(client, "webhook-ops", f"{receiver.url}/hook")},
                    attempts=2, backoff_s=0.05)
    history = HistoryWriter(lambda: connect(ch), ch.database)
    runtime = AlertsRuntime(settings, evaluator=evaluator, notifier=notifier, outbox=outbox,
                            metrics=AlertsMetrics(registry), publish_alert=await publisher(settings.topics.alerts),
                            publish_case=await publisher(settings.cases_topic), history=history)
    runtime.started.set()
    api = build_api(runtime, registry, ready=lambda: (True, 4), clickhouse=lambda: connect(ch))
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield Harness(f"http://127.0.0.1:{port}", runtime, settings, receiver, client)
    finally:
        server.should_exit = True
        await serving
        await runtime.flush(2)
        await outbox.close()
        await client.aclose()
        await producer.stop()
        history.close()
        receiver.stop()


def run(kafka: Any, clickhouse: Any, scenario: Any, **kwargs: Any) -> Any:
    async def main() -> Any:
        async with harness(kafka, clickhouse, **kwargs) as h:
            return await scenario(h)

    return asyncio.run(main())


def test_health_ready_metrics_docs(kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    async def scenario(h: Harness) -> None:
        async with httpx.AsyncClient(base_url=h.url) as c:
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            ready = await c.get("/readyz")
            assert ready.status_code == 200 and ready.json()["partitions"] == 4
            assert "ksp_alerts_deliveries_parked" in (await c.get("/metrics")).text
            assert (await c.get("/docs")).status_code == 200
            spec = (await c.get("/openapi.json")).json()
            for path in ("/v1/alerts", "/v1/alerts/{case_id}/resolve", "/v1/silences", "/v1/deliveries/parked",
                         "/v1/recovery", "/v1/quality", "/v1/customers/{customer_id}/timeline", "/v1/stream"):
                assert path in spec["paths"], path

    run(kafka, clickhouse, scenario)


def test_case_lifecycle_over_the_api(kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    unit = f"u-{uuid.uuid4().hex[:6]}"

    async def scenario(h: Harness) -> None:
        customers = [f"c-{unit}-{i}" for i in range(3)]
        await h.feed(*(scored_event(c, unit, 1, churn=True) for c in customers))
        await h.wait(lambda: all(h.delivered_for(c) for c in customers), what="three churn notifications")
        async with httpx.AsyncClient(base_url=h.url) as c:
            listed = (await c.get("/v1/alerts", params={"unit": unit, "kind": "churn_risk"})).json()
            assert listed["count"] == 3 and {x["state"] for x in listed["cases"]} == {"firing"}
            assert all(x["due_at"] for x in listed["cases"]) and "history" not in listed["cases"][0]
            by_customer = {x["alert"]["labels"]["customer_id"]: x["case_id"] for x in listed["cases"]}
            case_id = by_customer[customers[0]]

            ok = await c.post(f"/v1/alerts/{case_id}/acknowledge", json={"by": "ana"})
            assert ok.status_code == 200 and ok.json()["state"] == "acknowledged"
            again = await c.post(f"/v1/alerts/{case_id}/acknowledge", json={"by": "ana"})
            assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
            assert again.json()["type"].endswith("/invalid-transition") and again.json()["case_id"] == case_id
            assigned = await c.post(f"/v1/alerts/{case_id}/assign", json={"by": "ana", "assignee": "bo"})
            assert assigned.json()["state"] == "assigned" and assigned.json()["assignee"] == "bo"
            commented = await c.post(f"/v1/alerts/{case_id}/comments", json={"by": "bo", "note": "called"})
            assert commented.status_code == 200 and commented.json()["history"][-1]["note"] == "called"
            missing = await c.post(f"/v1/alerts/{case_id}/resolve", json={"by": "bo"})
            assert missing.status_code == 422 and "outcome" in missing.json()["detail"]
            resolved = await c.post(f"/v1/alerts/{case_id}/resolve",
                                    json={"by": "bo", "outcome": "contacted_recovered", "note": "offer made"})
            assert resolved.json()["state"] == "resolved" and resolved.json()["outcome"] == "contacted_recovered"
            twice = await c.post(f"/v1/alerts/{case_id}/resolve", json={"by": "bo", "outcome": "other"})
            assert twice.status_code == 409 and "already resolved" in twice.json()["detail"]
            assert twice.headers["content-type"] == PROBLEM

            bad = await c.post(f"/v1/alerts/{case_id}/comments", json={"by": "bo", "note": "x", "extra": 1})
            assert bad.status_code == 422 and bad.json()["type"].endswith("/validation-failed")
            bad_outcome = await c.post(f"/v1/alerts/{case_id}/resolve", json={"by": "bo", "outcome": "nope"})
            assert bad_outcome.status_code == 422
            unknown = await c.post("/v1/alerts/nope/acknowledge", json={"by": "ana"})
            assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
            assert (await c.get("/v1/alerts/nope")).status_code == 404

            detail = (await c.get(f"/v1/alerts/{case_id}")).json()
            assert [e["action"] for e in detail["history"]] == ["opened", "acknowledged", "assigned", "commented",
                                                                "resolved"]
            assert [e["by"] for e in detail["history"]] == ["system", "ana", "ana", "bo", "bo"]

            async def ids(**params: str) -> set[str]:
                body = (await c.get("/v1/alerts", params={"unit": unit, **params})).json()
                return {x["case_id"] for x in body["cases"]}

            assert await ids(state="resolved") == {case_id}
            assert await ids(state="firing") == set(by_customer.values()) - {case_id}
            assert await ids(assignee="bo") == {case_id}
            assert await ids(customer_id=customers[1]) == {by_customer[customers[1]]}
            assert await ids(severity="critical", touchpoint="store") == set(by_customer.values())
            assert await ids(severity="info") == set()
            assert await ids(kind="aggregate_drop") == set()

        # event-sourced: the cases topic rebuilds the same case; ClickHouse has the history
        await h.runtime.history.flush()  # type: ignore[union-attr]
        events = await replay_topic(h.settings.kafka, h.settings.cases_topic, 30)
        from services.alerts.cases import CaseStore

        rebuilt = CaseStore()
        rebuilt.rebuild(events)
        assert rebuilt.get(case_id) == h.runtime.cases.get(case_id)
        client = connect(h.settings.clickhouse)
        try:
            rows = client.query("SELECT action FROM kundensprechen.alert_events FINAL WHERE case_id = {c:String} "
                                "ORDER BY sequence", parameters={"c": case_id}).result_rows
        finally:
            client.close()
        assert [r[0] for r in rows] == ["opened", "acknowledged", "assigned", "commented", "resolved"]

    run(kafka, clickhouse, scenario)


def test_silences_suppress_notifications(kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    quiet, loud = f"quiet-{uuid.uuid4().hex[:6]}", f"loud-{uuid.uuid4().hex[:6]}"

    async def scenario(h: Harness) -> None:
        async with httpx.AsyncClient(base_url=h.url) as c:
            created = await c.post("/v1/silences", json={"matchers": {"unit": quiet}, "created_by": "ana",
                                                          "comment": "store refit", "duration_s": 600})
            assert created.status_code == 201
            silence = created.json()
            assert [s["silence_id"] for s in (await c.get("/v1/silences")).json()["silences"]] == [silence["silence_id"]]
            invalid = await c.post("/v1/silences", json={"matchers": {}, "created_by": "ana"})
            assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM

            await h.feed(scored_event(f"{quiet}-c", quiet, 0, churn=True), scored_event(f"{loud}-c", loud, 0, churn=True))
            await h.wait(lambda: h.delivered_for(f"{loud}-c"), what="the unsilenced notification")
            for _ in range(10):
                await h.runtime.tick()
                await asyncio.sleep(0.05)
            assert h.delivered_for(f"{quiet}-c") == []
            quiet_case = (await c.get("/v1/alerts", params={"unit": quiet})).json()["cases"][0]
            detail = (await c.get(f"/v1/alerts/{quiet_case['case_id']}")).json()
            assert [e["action"] for e in detail["history"]] == ["opened", "silenced"]

            assert (await c.delete(f"/v1/silences/{silence['silence_id']}")).status_code == 204
            assert (await c.delete(f"/v1/silences/{silence['silence_id']}")).status_code == 404
            assert (await c.get("/v1/silences")).json()["silences"] == []

    run(kafka, clickhouse, scenario)


def test_parked_deliveries_are_listed_and_replayed(kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    unit = f"park-{uuid.uuid4().hex[:6]}"

    async def scenario(h: Harness) -> None:
        h.receiver.fail_first = 10**6
        await h.feed(scored_event(f"{unit}-c", unit, 2, churn=True))
        parked = await h.wait(lambda: h.runtime.outbox.parked(), what="a parked delivery")
        async with httpx.AsyncClient(base_url=h.url) as c:
            listed = (await c.get("/v1/deliveries/parked")).json()
            assert listed["count"] == 1
            item = listed["deliveries"][0]
            assert item["state"] == "parked" and item["attempts"] == 2 and "HTTP 503" in item["error"]
            assert item["receiver"] == "webhook-ops" and item["idempotency_key"]
            metrics = (await c.get("/metrics")).text
            assert "ksp_alerts_deliveries_parked 1.0" in metrics
            assert 'ksp_alerts_deliveries_total{channel="webhook-ops",outcome="parked"} 1.0' in metrics
            h.receiver.fail_first = 0
            replay = await c.post(f"/v1/deliveries/parked/{item['delivery_id']}/replay")
            assert replay.status_code == 202
            await h.wait(lambda: parked[0].state == "delivered", what="the replayed delivery")
            assert (await c.get("/v1/deliveries/parked")).json()["count"] == 0
            again = await c.post(f"/v1/deliveries/parked/{item['delivery_id']}/replay")
            assert again.status_code == 409
            assert (await c.post("/v1/deliveries/parked/nope/replay")).status_code == 404
        keys = {r["headers"]["idempotency-key"] for r in h.receiver.requests}
        assert keys == {item["idempotency_key"]} and len(h.receiver.requests) == 3

    run(kafka, clickhouse, scenario)


def test_recovery_rate_over_the_api(kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    unit = f"rec-{uuid.uuid4().hex[:6]}"

    async def scenario(h: Harness) -> None:
        a, b = f"{unit}-a", f"{unit}-b"
        await h.feed(scored_event(a, unit, 1, churn=True), scored_event(b, unit, 4, churn=True))
        await h.wait(lambda: len(h.runtime.cases.query()) >= 2, what="two cases")
        later = datetime.now(UTC) + timedelta(seconds=1)
        await h.feed(scored_event(a, unit, 10, at=later), scored_event(b, unit, 3, at=later))
        async with httpx.AsyncClient(base_url=h.url) as c:
            report = (await c.get("/v1/recovery", params={"unit": unit})).json()
            assert (report["churn_cases"], report["followed_up"], report["recovered"]) == (2, 2, 1)
            assert report["rate"] == 0.5 and 0 < report["rate_low"] < 0.5 < report["rate_high"] < 1
            case_a = (await c.get("/v1/alerts", params={"customer_id": a})).json()["cases"][0]
            assert case_a["recovered"] is True

    run(kafka, clickhouse, scenario)


def test_quality_timeline_and_stream_for_the_console(kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    unit = f"q-{uuid.uuid4().hex[:6]}"
    customer = f"{unit}-cust"
    now = datetime.now(UTC).replace(microsecond=0)
    columns = ["event_id", "occurred_at", "accepted_at", "scored_at", "touchpoint", "source", "unit", "segment",
               "customer_id", "internal", "nps", "nps_category", "csat", "ces", "sqi", "comment", "sentiment",
               "sentiment_label", "themes", "negative_themes", "churn_intent", "complaint", "recommend_intent",
               "scorer_version", "kafka_partition", "kafka_offset"]
    rows = []
    for i in range(20):
        at = (now - timedelta(hours=i % 3, minutes=i)).replace(tzinfo=None)
        nps = [10, 9, 2, 7][i % 4]
        rows.append([f"{unit}-{i}", at, at, at, "web" if i % 2 else "store", "t", unit, "all",
                     customer if i < 5 else f"other-{i}", False, nps,
                     "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor", 80.0 - i, 60.0, 70.0,
                     f"comment {i}", 0.5 if nps >= 9 else -0.5, "positive" if nps >= 9 else "negative",
                     ["price", "staff"] if i % 3 else ["waiting_time"], ["price"] if nps < 7 else [],
                     False, nps < 7, False, "test", 0, i])

    async def scenario(h: Harness) -> None:
        client = connect(h.settings.clickhouse)
        try:
            client.insert("kundensprechen.feedback_events", rows, column_names=columns)
        finally:
            client.close()
        async with httpx.AsyncClient(base_url=h.url, timeout=10) as c:
            quality = (await c.get("/v1/quality", params={"hours": 24, "unit": unit})).json()
            groups = {g["touchpoint"]: g for g in quality["groups"]}
            assert set(groups) == {"web", "store"} and groups["store"]["n"] == 10 and groups["web"]["n"] == 10
            store = groups["store"]
            # store: i even -> nps 10, 2, 10, 2, ... : 5 promoters, 5 detractors -> NPS 0
            assert store["nps"]["value"] == 0.0 and store["nps"]["low"] < 0 < store["nps"]["high"]
            assert store["csat"]["n"] == 10 and store["csat"]["low"] < store["csat"]["value"] < store["csat"]["high"]
            assert store["ces"]["value"] == 60.0 and store["sentiment"]["value"] == 0.0
            assert sum(p["n"] for p in store["series"]) == 10 and 1 <= len(store["series"]) <= 4
            assert store["top_themes"][0]["theme"] in {"price", "staff", "waiting_time"}
            web_only = (await c.get("/v1/quality", params={"unit": unit, "touchpoint": "web"})).json()
            assert [g["touchpoint"] for g in web_only["groups"]] == ["web"]

            timeline = (await c.get(f"/v1/customers/{customer}/timeline")).json()
            assert timeline["count"] == 5
            times = [e["occurred_at"] for e in timeline["events"]]
            assert times == sorted(times, reverse=True) and {e["touchpoint"] for e in timeline["events"]} == {"web", "store"}
            assert timeline["events"][0]["comment"].startswith("comment")

            # the event stream: a quality tick, then the case events of a new churn case
            seen: list[tuple[str, Any]] = []

            async def listen() -> None:
                async with c.stream("GET", "/v1/stream") as response:
                    assert response.headers["content-type"].startswith("text/event-stream")
                    kind = None
                    async for line in response.aiter_lines():
                        if line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: ") and kind:
                            seen.append((kind, json.loads(line[6:])))
                            if kind == "case" and any(k == "quality" for k, _ in seen):
                                return

            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.3)
            await h.feed(scored_event(f"{unit}-stream", unit, 0, churn=True))
            await asyncio.wait_for(listener, 10)
        kinds = [k for k, _ in seen]
        assert "quality" in kinds and "case" in kinds
        case_event = next(d for k, d in seen if k == "case")
        assert case_event["action"] == "opened" and case_event["case"]["alert"]["labels"]["unit"] == unit

    run(kafka, clickhouse, scenario)


def test_the_console_is_served_at_the_root_when_present(kafka, clickhouse, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "index.html").write_text("<html>console</html>")

    async def scenario(h: Harness) -> None:
        api = build_api(h.runtime, CollectorRegistry(), ready=lambda: (False, 0), console_dir=tmp_path)
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            assert "console" in (await c.get("/")).text
            assert (await c.get("/readyz")).status_code == 503
            assert (await c.get("/healthz")).status_code == 200

    run(kafka, clickhouse, scenario)
