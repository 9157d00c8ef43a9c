"""The emitters against a real ingest server (uvicorn) and the real broker."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import CollectorRegistry

from schemas.feedback import FeedbackEvent
from services.ingest.app import create_app
from services.ingest.emitter import EmitError, HttpEmitter, KafkaEmitter

from .conftest import KEY_ALL, KEY_WEB, event, live_server, read_topic

pytestmark = pytest.mark.kafka


def test_http_emitter_batches_and_reports_rejections(settings_for, kafka):
    settings = settings_for()
    with live_server(create_app(settings, CollectorRegistry())) as url:
        with HttpEmitter(url, api_key=KEY_ALL, batch_size=100) as emitter:
            ids = [emitter.emit(event(comment={"text": f"n{i}"})) for i in range(250)]
            assert len(emitter.results.accepted) == 200  # two full batches already sent
            # An invalid dict is refused at emit time (validated client-side):
            with pytest.raises(ValueError):
                emitter.emit({"touchpoint": "web"})
        assert emitter.results.accepted == ids and emitter.results.rejected == []
        # Server-side rejections (e.g. scope) raise with the problem document.
        with HttpEmitter(url, api_key=KEY_WEB) as scoped, pytest.raises(EmitError) as err:
            scoped.send([event(touchpoint="app")])
        assert err.value.status == 403 and err.value.problem["type"].endswith("/forbidden")
    records = read_topic(kafka.bootstrap_servers, settings.topics.raw, 250)
    assert sorted(r.key.decode() for r in records) == sorted(ids)


def test_http_emitter_retries_honouring_retry_after(settings_for, kafka):
    settings = settings_for(rate_limit_events_per_s=20, rate_limit_burst=20)
    with live_server(create_app(settings, CollectorRegistry())) as url:
        emitter = HttpEmitter(url, api_key=KEY_ALL, batch_size=20, backoff_s=0.01)
        started = time.monotonic()
        result = emitter.send([event() | {"event_id": f"r-{i}"} for i in range(40)])
        elapsed = time.monotonic() - started
        emitter.close()
    assert len(result.accepted) == 40
    assert elapsed >= 0.9  # the second batch waited for Retry-After (1 s), not just the backoff
    records = read_topic(kafka.bootstrap_servers, settings.topics.raw, 40)
    assert len({r.key for r in records}) == 40


def test_http_emitter_retries_then_gives_up_on_unreachable_server():
    emitter = HttpEmitter("http://127.0.0.1:9", max_attempts=2, backoff_s=0.01, timeout_s=1)
    with pytest.raises(httpx.TransportError):
        emitter.send([event()])


def test_kafka_emitter_idempotent_acks_all(kafka):
    topic = f"test.emitter.{time.time_ns()}"
    with KafkaEmitter(kafka.bootstrap_servers, topic) as emitter:
        ids = [emitter.emit(event(touchpoint="internal", comment={"text": f"ruf 0170 1234567 an ({i})"}))
               for i in range(30)]
        assert emitter.flush() == ids
    records = read_topic(kafka.bootstrap_servers, topic, 30)
    assert sorted(r.key.decode() for r in records) == sorted(ids)
    stored = FeedbackEvent.model_validate_json(records[0].value)
    assert stored.event_id == records[0].key.decode() and "[phone]" in stored.comment.text
