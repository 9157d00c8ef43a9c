"""End to end: feedback posted over HTTP is scored, stored once in ClickHouse, and a churn
risk reaches the webhook."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import httpx

from tests.e2e.conftest import Pipeline, wait_until


def feedback(event_id: str, nps: int, comment: str, customer: str, unit: str = "e2e-unit") -> dict:
    return {
        "event_id": event_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "touchpoint": "call_centre",
        "source": "e2e-test",
        "unit": unit,
        "customer_id": customer,
        "responses": [{"metric": "nps", "value": nps}, {"metric": "csat", "value": 2}],
        "comment": {"text": comment},
    }


def stored(pipeline: Pipeline, event_ids: list[str]) -> int:
    rows = pipeline.query("SELECT count() FROM kundensprechen.feedback_events WHERE event_id IN {ids:Array(String)}",
                          ids=event_ids)
    return int(rows[0][0])


def test_posted_events_are_stored_once_with_their_scores(pipeline: Pipeline) -> None:
    ids = [f"skeleton-{uuid.uuid4()}" for _ in range(20)]
    batch = [feedback(i, nps=9, comment="Very friendly and fast, thank you!", customer="c-happy") for i in ids]
    response = httpx.post(f"{pipeline.ingest_url}/v1/feedback", json=batch, timeout=10)
    assert response.status_code == 202, response.text
    wait_until(lambda: stored(pipeline, ids) == 20, timeout=30, what="20 rows in feedback_events")

    rows = pipeline.query(
        "SELECT nps, nps_category, csat, scorer_version FROM kundensprechen.feedback_events "
        "WHERE event_id = {id:String}", id=ids[0])
    assert rows == [(9, "promoter", 25.0, rows[0][3])] and rows[0][3].startswith("score-")


def test_a_retried_event_becomes_one_row(pipeline: Pipeline) -> None:
    event = feedback(f"retry-{uuid.uuid4()}", nps=7, comment="ok", customer="c-retry")
    for _ in range(3):
        assert httpx.post(f"{pipeline.ingest_url}/v1/feedback", json=event, timeout=10).status_code == 202
    marker = feedback(f"marker-{uuid.uuid4()}", nps=8, comment="ok", customer="c-retry")
    assert httpx.post(f"{pipeline.ingest_url}/v1/feedback", json=marker, timeout=10).status_code == 202
    wait_until(lambda: stored(pipeline, [marker["event_id"]]) == 1, timeout=30, what="the marker row")
    wait_until(lambda: stored(pipeline, [event["event_id"]]) >= 1, timeout=30, what="the retried event")
    assert stored(pipeline, [event["event_id"]]) == 1


def test_a_detractor_who_states_intent_to_cancel_triggers_a_signed_webhook(pipeline: Pipeline) -> None:
    customer = f"c-churn-{uuid.uuid4().hex[:8]}"
    event = feedback(f"churn-{uuid.uuid4()}", nps=1, customer=customer,
                     comment="Terrible service, I will cancel my contract and switch to another provider.")
    assert httpx.post(f"{pipeline.ingest_url}/v1/feedback", json=event, timeout=10).status_code == 202

    def delivered() -> list[int]:
        return [i for i, n in enumerate(pipeline.webhook.received)
                if any(a["labels"].get("customer_id") == customer for a in n["alerts"])]

    index = wait_until(delivered, timeout=30, what="the churn-risk webhook")[0]
    notification, headers = pipeline.webhook.received[index], pipeline.webhook.headers[index]
    [alert] = [a for a in notification["alerts"] if a["labels"].get("customer_id") == customer]
    assert notification["status"] == "firing"
    assert alert["kind"] == "churn_risk" and alert["status"] == "firing"
    assert alert["evidence"]["example_event_ids"] == [event["event_id"]]
    expected = hmac.new(b"test-secret", pipeline.webhook.bodies[index], hashlib.sha256).hexdigest()
    assert headers["x-ksp-signature"] == f"sha256={expected}"
    assert headers["idempotency-key"] == notification["idempotency_key"]


def test_a_happy_customer_triggers_no_alert(pipeline: Pipeline) -> None:
    customer = f"c-fine-{uuid.uuid4().hex[:8]}"
    event = feedback(f"fine-{uuid.uuid4()}", nps=10, comment="Great, I will recommend you!", customer=customer)
    assert httpx.post(f"{pipeline.ingest_url}/v1/feedback", json=event, timeout=10).status_code == 202
    wait_until(lambda: stored(pipeline, [event["event_id"]]) == 1, timeout=30, what="the row")
    assert not any(a["labels"].get("customer_id") == customer
                   for n in pipeline.webhook.received for a in n["alerts"])
