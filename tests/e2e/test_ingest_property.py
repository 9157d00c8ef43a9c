"""Property, end to end: whatever clients send, no 5xx; every accepted event is stored in
ClickHouse exactly once (retries included)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Pipeline, wait_until
from tests.ingest.test_property import invalid_events, valid_events

items = st.one_of(valid_events(), valid_events(), invalid_events())


def stored_counts(pipeline: Pipeline, ids: list[str]) -> dict[str, int]:
    rows = pipeline.query(
        "SELECT event_id, count() FROM kundensprechen.feedback_events WHERE event_id IN {ids:Array(String)} "
        "GROUP BY event_id", ids=ids)
    return {event_id: int(n) for event_id, n in rows}


def test_every_accepted_event_is_stored_exactly_once(pipeline: Pipeline) -> None:
    accepted: set[str] = set()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(items, min_size=1, max_size=8), resend=st.booleans())
    def post(batch: list[Any], resend: bool) -> None:
        body = orjson.dumps(batch)
        for _ in range(2 if resend else 1):  # a client retrying the very same request
            response = httpx.post(f"{pipeline.ingest_url}/v1/feedback", content=body,
                                  headers={"content-type": "application/json"}, timeout=15)
            assert response.status_code < 500, response.text
            if response.status_code == 202:
                accepted.update(response.json()["event_ids"])

    post()
    assert accepted, "the generated batches contained valid events"
    ids = sorted(accepted)
    wait_until(lambda: len(stored_counts(pipeline, ids)) == len(ids), timeout=60,
               what=f"all {len(ids)} accepted events in feedback_events")
    counts = stored_counts(pipeline, ids)
    assert {event_id: n for event_id, n in counts.items() if n != 1} == {}
