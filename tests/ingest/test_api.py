"""POST /v1/feedback end to end against the real embedded broker."""

from __future__ import annotations

import time

import orjson
import pytest

from schemas.feedback import FeedbackEvent
from services.ingest.parsing import cloudevent_event_id
from services.ingest.problems import problem_type

from .conftest import AUTH, event, read_topic, running_client

pytestmark = pytest.mark.kafka


def post(client, body, content_type="application/json", headers=None):  # type: ignore[no-untyped-def]
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/v1/feedback", content=content,
                       headers={**AUTH, "content-type": content_type, **(headers or {})})


def assert_problem(response, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["type"] == problem_type(slug)
    assert doc["status"] == status and doc["title"] and doc["detail"]
    return doc


def test_single_event_is_on_the_raw_topic_keyed_by_event_id(ingest, kafka):
    before = int(time.time() * 1000)
    r = post(ingest, event(event_id="evt-1", comment={"text": "fast delivery"}))
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "rejected": 0, "event_ids": ["evt-1"]}
    topic = ingest.app.state.settings.topics.raw
    [record] = read_topic(kafka.bootstrap_servers, topic, 1)
    assert record.key == b"evt-1"
    stored = FeedbackEvent.model_validate_json(record.value)
    assert stored.event_id == "evt-1" and stored.comment.text == "fast delivery"
    assert before <= record.timestamp <= int(time.time() * 1000)


def test_missing_event_id_is_derived_deterministically(ingest, kafka):
    doc = event(occurred_at="2026-01-02T03:04:05+00:00")
    expected = FeedbackEvent.model_validate(doc).with_event_id().event_id
    ids = [post(ingest, doc).json()["event_ids"][0] for _ in range(2)]
    assert ids == [expected, expected]
    records = read_topic(kafka.bootstrap_servers, ingest.app.state.settings.topics.raw, 2)
    assert [r.key for r in records] == [expected.encode()] * 2  # dedup is downstream's job


def test_batch_partial_acceptance_reports_invalid_items_by_index(ingest, kafka):
    batch = [event(event_id="b-0"), event(event_id="b-1", responses=[{"metric": "nps", "value": 11}]),
             event(event_id="b-2"), {"nonsense": True}]
    r = post(ingest, batch)
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["accepted"] == 2 and doc["rejected"] == 2 and doc["event_ids"] == ["b-0", "b-2"]
    assert [x["status"] for x in doc["results"]] == ["accepted", "rejected", "accepted", "rejected"]
    err = doc["results"][1]["errors"][0]
    assert err["index"] == 1 and err["loc"] == ["responses", 0] and "outside the scale" in err["msg"]
    assert {e["index"] for e in doc["errors"]} == {1, 3}
    records = read_topic(kafka.bootstrap_servers, ingest.app.state.settings.topics.raw, 2)
    assert sorted(r.key for r in records) == [b"b-0", b"b-2"]


def test_batch_with_no_valid_item_is_422(ingest):
    doc = assert_problem(post(ingest, [{"touchpoint": "web"}, event(touchpoint="moon")]), 422,
                         "validation-failed")
    locs = {(e["index"], tuple(e["loc"])) for e in doc["errors"]}
    assert (0, ("occurred_at",)) in locs and (1, ("touchpoint",)) in locs


def test_single_schema_violation_is_422_with_field_path(ingest):
    doc = assert_problem(post(ingest, event(unknown_field=1, comment={"text": ""})), 422, "validation-failed")
    locs = {tuple(e["loc"]) for e in doc["errors"]}
    assert locs == {("unknown_field",), ("comment", "text")}
    assert all(e["index"] == 0 and e["msg"] for e in doc["errors"])


def test_empty_batch_is_422(ingest):
    assert_problem(post(ingest, []), 422, "validation-failed")


def test_ndjson_accepts_lines_and_reports_malformed_ones(ingest, kafka):
    lines = [orjson.dumps(event(event_id="n-0")), b"{not json", orjson.dumps(event(event_id="n-2")), b""]
    r = post(ingest, b"\n".join(lines), "application/x-ndjson")
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["event_ids"] == ["n-0", "n-2"]
    assert doc["errors"][0]["index"] == 1 and doc["errors"][0]["msg"].startswith("malformed JSON")
    assert len(read_topic(kafka.bootstrap_servers, ingest.app.state.settings.topics.raw, 2)) == 2
    assert_problem(post(ingest, b"{x\n[y\n", "application/x-ndjson"), 400, "malformed-json")


def test_cloudevents_structured_and_batch(ingest, kafka):
    ce = {"specversion": "1.0", "type": "dev.kundensprechen.feedback.v1", "source": "/shop",
          "id": "ce-42", "datacontenttype": "application/json", "data": event()}
    r = post(ingest, ce, "application/cloudevents+json")
    assert r.status_code == 202, r.text
    assert r.json()["event_ids"] == [cloudevent_event_id("/shop", "ce-42")]
    batch = [{**ce, "id": "ce-1", "data": event(event_id="own-id")},
             {**ce, "id": "ce-2", "data": event(touchpoint="moon")},
             {k: v for k, v in ce.items() if k != "id"}]
    r = post(ingest, batch, "application/cloudevents-batch+json")
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["event_ids"] == ["own-id"]
    errors = {(e["index"], tuple(e["loc"])) for e in doc["errors"]}
    assert errors == {(1, ("data", "touchpoint")), (2, ("id",))}
    assert len(read_topic(kafka.bootstrap_servers, ingest.app.state.settings.topics.raw, 2)) == 2
    doc = assert_problem(post(ingest, {**ce, "specversion": "0.3"}, "application/cloudevents+json"),
                         422, "validation-failed")
    assert doc["errors"][0]["loc"] == ["specversion"]


def test_cloudevents_binary_mode(ingest, kafka):
    ce = {"ce-specversion": "1.0", "ce-type": "dev.kundensprechen.feedback.v1",
          "ce-source": "/ivr", "ce-id": "call-7"}
    r = post(ingest, event(touchpoint="call_centre", source="ivr"), headers=ce)
    assert r.status_code == 202, r.text
    assert r.json()["event_ids"] == [cloudevent_event_id("/ivr", "call-7")]
    [record] = read_topic(kafka.bootstrap_servers, ingest.app.state.settings.topics.raw, 1)
    assert FeedbackEvent.model_validate_json(record.value).touchpoint == "call_centre"
    doc = assert_problem(post(ingest, event(), headers={**ce, "ce-id": ""}), 422, "validation-failed")
    assert doc["errors"][0]["loc"] == ["ce-id"]


def test_client_errors_have_exact_status_and_type(settings_for):
    with running_client(settings_for(max_body_bytes=2048, max_batch_items=3)) as c:
        assert_problem(post(c, b'{"occurred_at": '), 400, "malformed-json")
        assert_problem(post(c, event(), "text/plain"), 415, "unsupported-media-type")
        assert_problem(c.post("/v1/feedback", content=b"{}", headers=AUTH), 415, "unsupported-media-type")
        assert_problem(post(c, event(comment={"text": "x" * 3000})), 413, "body-too-large")
        assert_problem(post(c, [event()] * 4), 413, "batch-too-large")
        assert_problem(c.get("/v1/nothing"), 404, "not-found")
        assert_problem(c.get("/v1/feedback"), 405, "method-not-allowed")
        # Chunked upload without Content-Length is limited while streaming.
        r = c.post("/v1/feedback", content=iter([b"[" + b" " * 1500, b" " * 1500 + b"]"]),
                   headers={**AUTH, "content-type": "application/json"})
        assert_problem(r, 413, "body-too-large")


def test_unexpected_errors_are_problem_json_500(settings_for):
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry

    from services.ingest.app import create_app

    app = create_app(settings_for(), CollectorRegistry())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    with TestClient(app, raise_server_exceptions=False) as c:
        assert_problem(c.get("/boom"), 500, "internal-error")


def test_an_unexpected_error_in_post_feedback_is_problem_json_500_counted_and_raised(settings_for):
    """As on every other route: the 500 answer, the request counted with status 500, and the
    exception raised on to the server (which logs it)."""
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry

    from services.ingest.app import create_app

    registry = CollectorRegistry()
    app = create_app(settings_for(), registry)

    class BrokenIngestor:
        async def ingest(self, parsed: object, principal: object) -> None:
            raise RuntimeError("bug")

    app.state.ingestor = BrokenIngestor()
    assert_problem(TestClient(app, raise_server_exceptions=False).post("/v1/feedback", json=event(), headers=AUTH),
                   500, "internal-error")
    with pytest.raises(RuntimeError, match="bug"):
        TestClient(app).post("/v1/feedback", json=event(), headers=AUTH)
    labels = {"route": "/v1/feedback", "method": "POST", "status": "500"}
    assert registry.get_sample_value("ksp_ingest_requests_total", labels) == 2
    assert registry.get_sample_value("ksp_ingest_inflight_requests") == 0


def test_auth_401_and_key_scope_403(ingest, kafka):
    r = ingest.post("/v1/feedback", json=event())
    assert_problem(r, 401, "unauthorized")
    assert "Bearer" in r.headers["www-authenticate"]
    assert_problem(post(ingest, event(), headers={"authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_problem(post(ingest, event(), headers={"authorization": "Basic abc"}), 401, "unauthorized")
    web = {"authorization": "", "x-api-key": "key-web-0123456789"}
    assert post(ingest, event(event_id="ok-web"), headers=web).status_code == 202
    doc = assert_problem(post(ingest, [event(), event(touchpoint="app"), event(source="crm")], headers=web),
                         403, "forbidden")
    assert [(e["index"], e["loc"]) for e in doc["errors"]] == [(1, ["touchpoint"]), (2, ["source"])]
    records = read_topic(kafka.bootstrap_servers, ingest.app.state.settings.topics.raw, 1)
    assert [r.key for r in records] == [b"ok-web"]  # nothing of the 403 request was produced


def test_auth_can_be_disabled_only_in_dev(settings_for):
    with running_client(settings_for(auth_enabled=False)) as c:
        assert c.post("/v1/feedback", json=event()).status_code == 202
    with pytest.raises(ValueError, match="dev profile"):
        settings_for(auth_enabled=False, profile="prod")


def test_api_keys_file(settings_for, tmp_path):
    from services.ingest.auth import hash_key

    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - name: kiosk\n    sha256: {hash_key('kiosk-secret')}\n"
                    "    touchpoints: [kiosk]\n")
    with running_client(settings_for(api_keys=[], api_keys_file=keys)) as c:
        ok = c.post("/v1/feedback", json=event(touchpoint="kiosk"), headers={"x-api-key": "kiosk-secret"})
        assert ok.status_code == 202
        assert_problem(c.post("/v1/feedback", json=event(), headers={"x-api-key": "kiosk-secret"}),
                       403, "forbidden")


def test_rate_limit_429_with_retry_after(ingest):
    slow = {"authorization": "Bearer key-slow-0123456789"}
    assert post(ingest, [event(), event()], headers=slow).status_code == 202
    assert post(ingest, event(), headers=slow).status_code == 202
    r = post(ingest, event(), headers=slow)
    assert_problem(r, 429, "rate-limited")
    assert int(r.headers["retry-after"]) >= 1
    assert post(ingest, event()).status_code == 202  # other keys are not affected
    time.sleep(0.6)
    assert post(ingest, event(), headers=slow).status_code == 202


PII = "Mail an erika.mustermann@example.org, Tel. +49 170 1234567, IBAN DE89 3704 0044 0532 0130 00."
REDACTED = "Mail an [email], Tel. [phone], IBAN [iban]."


def test_redaction_of_internal_feedback_by_default(ingest, kafka):
    r = post(ingest, [event(event_id="int", touchpoint="internal", comment={"text": PII}),
                      event(event_id="ext", comment={"text": PII})])
    assert r.status_code == 202
    records = read_topic(kafka.bootstrap_servers, ingest.app.state.settings.topics.raw, 2)
    texts = {r.key: FeedbackEvent.model_validate_json(r.value).comment.text for r in records}
    assert texts == {b"int": REDACTED, b"ext": PII}


def test_redaction_for_all_feedback_and_ids_stable(settings_for, kafka):
    with running_client(settings_for(redaction="all")) as c:
        doc = event(comment={"text": PII + " Datum 2026-01-02, Betrag 1234,56 EUR"})
        r = post(c, doc)
        expected_id = FeedbackEvent.model_validate(doc).with_event_id().event_id
        assert r.json()["event_ids"] == [expected_id]
        [record] = read_topic(kafka.bootstrap_servers, c.app.state.settings.topics.raw, 1)
        assert FeedbackEvent.model_validate_json(record.value).comment.text == (
            REDACTED + " Datum 2026-01-02, Betrag 1234,56 EUR")


def test_ingest_buffer_full_is_503_with_retry_after(settings_for):
    with running_client(settings_for(max_inflight_events=2, retry_after_s=7)) as c:
        r = post(c, [event(), event(), event()])
        assert_problem(r, 503, "buffer-full")
        assert r.headers["retry-after"] == "7"
        assert post(c, [event(), event()]).status_code == 202
