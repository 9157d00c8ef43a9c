"""Property: whatever clients send, no 5xx; every valid event is on the topic exactly once."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.feedback import FeedbackEvent

from .conftest import AUTH, read_topic, running_client

pytestmark = pytest.mark.kafka

_ids = itertools.count()

names = st.from_regex(r"[a-z][a-z0-9\-]{0,20}", fullmatch=True)
timestamps = st.datetimes(min_value=__import__("datetime").datetime(2000, 1, 1),
                          max_value=__import__("datetime").datetime(2199, 12, 30),
                          timezones=st.just(__import__("datetime").UTC)).map(lambda d: d.isoformat())
responses = st.one_of(
    st.builds(lambda v: {"metric": "nps", "value": v}, st.integers(0, 10)),
    st.builds(lambda v: {"metric": "csat", "value": v}, st.integers(1, 5)),
    st.builds(lambda v: {"metric": "rating", "value": v, "scale": {"min": 0, "max": 100}},
              st.floats(0, 100, allow_nan=False)),
)
comments = st.text(min_size=1, max_size=200).filter(str.strip).map(lambda t: {"text": t})


@st.composite
def valid_events(draw: Any) -> dict[str, Any]:
    doc = {
        "event_id": f"prop-{next(_ids)}",
        "occurred_at": draw(timestamps),
        "touchpoint": draw(st.sampled_from(["web", "app", "store", "chat", "internal"])),
        "source": draw(names),
        "responses": draw(st.lists(responses, max_size=3)),
    }
    if not doc["responses"] or draw(st.booleans()):
        doc["comment"] = draw(comments)
    return doc


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def invalid_events(draw: Any) -> Any:
    base = draw(valid_events())
    mutation = draw(st.sampled_from(["drop", "extra", "bad_nps", "bad_time", "bad_tp", "junk", "empty"]))
    if mutation == "drop":
        base.pop(draw(st.sampled_from(["occurred_at", "touchpoint", "source"])))
    elif mutation == "extra":
        base["unexpected"] = draw(json_values)
    elif mutation == "bad_nps":
        base["responses"] = [{"metric": "nps", "value": draw(st.sampled_from([11, -1, 5.5, "x"]))}]
    elif mutation == "bad_time":
        base["occurred_at"] = draw(st.sampled_from(["2026-01-01T00:00:00", "yesterday", 12]))
    elif mutation == "bad_tp":
        base["touchpoint"] = draw(st.text(max_size=8).filter(lambda t: t not in {"web", "app"}))
    elif mutation == "junk":
        return draw(json_values)
    else:
        base["responses"], base["comment"] = [], None
    return base


items = st.one_of(valid_events().map(lambda e: ("valid", e)), invalid_events().map(lambda e: ("invalid", e)))
content_types = st.sampled_from(["application/json", "application/x-ndjson", "application/cloudevents+json",
                                 "text/plain", "application/cloudevents-batch+json", ""])


@st.composite
def requests(draw: Any) -> tuple[bytes, str, list[tuple[str, Any]]]:
    kind = draw(st.sampled_from(["single", "batch", "ndjson", "garbage"]))
    if kind == "single":
        tag, doc = draw(items)
        return orjson.dumps(doc), "application/json", [(tag, doc)]
    if kind == "batch":
        batch = draw(st.lists(items, max_size=8))
        return orjson.dumps([d for _, d in batch]), "application/json", batch
    if kind == "ndjson":
        batch = draw(st.lists(items, min_size=1, max_size=8))
        return b"\n".join(orjson.dumps(d) for _, d in batch), "application/x-ndjson", batch
    return draw(st.binary(max_size=300)), draw(content_types), []


def test_no_5xx_and_every_valid_event_exactly_once(settings_for, kafka):
    state: dict[str, Any] = {"valid": set(), "accepted": []}
    with running_client(settings_for(rate_limit_enabled=False, max_batch_items=8)) as client:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(requests())
        def check(request: tuple[bytes, str, list[tuple[str, Any]]]) -> None:
            body, content_type, batch = request
            r = client.post("/v1/feedback", content=body, headers={**AUTH, "content-type": content_type})
            assert r.status_code < 500, r.text
            valid_ids = {d["event_id"] for tag, d in batch if tag == "valid"}
            if r.status_code == 202:
                accepted = r.json()["event_ids"]
                # Invalid mutations may still be valid events (e.g. an extra-free mutation):
                # what matters is that every valid one was accepted.
                assert valid_ids <= set(accepted)
                state["accepted"].extend(accepted)
            else:
                assert r.headers["content-type"] == "application/problem+json"
                assert not valid_ids, r.text
            state["valid"] |= valid_ids

        check()
        topic = client.app.state.settings.topics.raw
    records = read_topic(kafka.bootstrap_servers, topic, len(state["accepted"]), timeout=20, settle=1.0)
    keys = [r.key.decode() for r in records]
    assert sorted(keys) == sorted(state["accepted"])
    assert len(keys) == len(set(keys)), "an accepted event is on the topic more than once"
    assert state["valid"] <= set(keys)
    for r in records[:50]:
        assert FeedbackEvent.model_validate_json(r.value).event_id == r.key.decode()


def _webhook_payloads() -> st.SearchStrategy[Any]:
    answer = st.fixed_dictionaries({}, optional={"type": json_values | st.sampled_from(["number", "text", "choice"]),
                                                 "number": json_values, "text": json_values, "choice": json_values,
                                                 "field": json_values | st.fixed_dictionaries(
                                                     {}, optional={"ref": json_values | st.just("nps"),
                                                                   "id": json_values})})
    typeform = st.fixed_dictionaries({"form_response": st.fixed_dictionaries({}, optional={
        "form_id": json_values, "token": json_values | st.just("tok"), "submitted_at": json_values,
        "hidden": json_values, "answers": json_values | st.lists(answer, max_size=3)})})
    qualtrics = st.fixed_dictionaries({}, optional={
        "responseId": json_values | st.just("R_1"), "surveyId": json_values,
        "values": json_values | st.dictionaries(st.sampled_from(["QID1", "QID3_TEXT", "recordedDate", "unit"]),
                                                json_values)})
    return st.one_of(typeform, qualtrics, qualtrics.map(lambda q: {"result": q}), json_values)


def test_webhooks_never_answer_5xx(settings_for):
    mappings = {"typeform_mappings": {"*": {"nps": "nps", "comment": "why"}},
                "qualtrics_mappings": {"*": {"nps": "QID1", "comment": "QID3_TEXT"}}}
    with running_client(settings_for(rate_limit_enabled=False, **mappings)) as client:

        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
        @given(_webhook_payloads(), st.sampled_from(["/v1/webhooks/typeform", "/v1/webhooks/qualtrics"]))
        def check(payload: Any, path: str) -> None:
            r = client.post(path, content=orjson.dumps(payload), headers={**AUTH, "content-type": "application/json"})
            assert r.status_code < 500, r.text
            assert r.status_code in (202, 400, 422), r.text

        check()
