"""Health, readiness, local Swagger UI, OpenAPI contract, Prometheus metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from .conftest import AUTH, KEY_WEB, event, running_client

pytestmark = pytest.mark.kafka


def test_healthz_and_readyz(ingest):
    assert ingest.get("/healthz").json() == {"status": "ok"}
    r = ingest.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_docs_are_served_without_a_cdn(ingest):
    html = ingest.get("/docs").text
    assert "cdn" not in html.lower() and "https://" not in html
    assert "/docs/static/swagger-ui-bundle.js" in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert ingest.get(f"/docs/static/{asset}").status_code == 200
    assert ingest.get("/redoc").status_code == 404


def test_openapi_states_the_contract(ingest):
    spec = ingest.get("/openapi.json").json()
    assert "idempotency key" in spec["info"]["description"].lower()
    assert "FeedbackEvent" in spec["components"]["schemas"]
    content = spec["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson", "application/cloudevents+json",
            "application/cloudevents-batch+json"} <= set(content)
    assert {"202", "400", "401", "403", "413", "415", "422", "429", "503"} <= set(
        spec["paths"]["/v1/feedback"]["post"]["responses"])


def test_metrics_on_a_fresh_registry(settings_for):
    registry = CollectorRegistry()
    with running_client(settings_for(), registry) as c:
        assert c.post("/v1/feedback", json=[event(), event(touchpoint="app"), {"x": 1}],
                      headers=AUTH).status_code == 202
        assert c.post("/v1/feedback", json=event()).status_code == 401
        assert c.post("/v1/feedback", json=[event(touchpoint="app")] * 2,
                      headers={"x-api-key": KEY_WEB}).status_code == 403
        text = c.get("/metrics").text
    value = registry.get_sample_value
    assert value("ksp_ingest_events_accepted_total", {"touchpoint": "web"}) == 1
    assert value("ksp_ingest_events_accepted_total", {"touchpoint": "app"}) == 1
    assert value("ksp_ingest_events_rejected_total", {"reason": "invalid"}) == 1
    assert value("ksp_ingest_events_rejected_total", {"reason": "unauthorized"}) == 1
    assert value("ksp_ingest_events_rejected_total", {"reason": "forbidden"}) == 2
    assert value("ksp_ingest_requests_total",
                 {"route": "/v1/feedback", "method": "POST", "status": "202"}) == 1
    assert value("ksp_ingest_requests_total",
                 {"route": "/v1/feedback", "method": "POST", "status": "401"}) == 1
    assert value("ksp_ingest_produce_seconds_count") == 1
    assert value("ksp_ingest_inflight_events") == 0
    assert "ksp_ingest_inflight_requests" in text and "ksp_ingest_request_seconds_bucket" in text
