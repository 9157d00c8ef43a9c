"""Typeform webhook and Qualtrics response payloads -> FeedbackEvents on the raw topic."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest

from schemas.feedback import FeedbackEvent

from .conftest import AUTH, read_topic, running_client

pytestmark = pytest.mark.kafka

TYPEFORM = {
    "event_id": "01HXYZ", "event_type": "form_response",
    "form_response": {
        "form_id": "lT4Z3j", "token": "a3a12ec67a1365927098a606107fac15",
        "landed_at": "2026-01-18T18:07:02Z", "submitted_at": "2026-01-18T18:17:02Z",
        "hidden": {"customer_id": "c-981", "unit": "berlin-mitte"},
        "definition": {"id": "lT4Z3j", "title": "After purchase", "fields": []},
        "answers": [
            {"type": "number", "number": 9, "field": {"id": "Q1a", "type": "opinion_scale", "ref": "nps"}},
            {"type": "number", "number": 4, "field": {"id": "Q2b", "type": "rating", "ref": "sat"}},
            {"type": "text", "text": "Schnelle Lieferung",
             "field": {"id": "Q3c", "type": "long_text", "ref": "why"}},
            {"type": "choice", "choice": {"label": "Online"}, "field": {"id": "Q4d", "type": "multiple_choice"}},
        ],
    },
}
QUALTRICS = {
    "result": {
        "responseId": "R_1abcXYZ",
        "values": {"startDate": "2026-02-01T10:00:00Z", "endDate": "2026-02-01T10:03:00Z",
                   "recordedDate": "2026-02-01T10:03:01.5Z", "QID1": 3, "QID1_NPS_GROUP": 1,
                   "QID2": "6", "QID3_TEXT": "Zu lange Wartezeit", "customer_id": "c-77",
                   "segment": "business"},
        "labels": {}, "displayedFields": [], "displayedValues": {},
    },
    "meta": {"httpStatus": "200 - OK"},
}


@pytest.fixture
def adapters_client(settings_for):
    settings = settings_for(
        typeform_mappings={"lT4Z3j": {"source": "typeform-shop", "nps": "nps", "csat": "sat", "comment": "why",
                                      "secret": "tf-secret"}},
        qualtrics_mappings={"*": {"touchpoint": "call_centre", "source": "qualtrics-ivr", "nps": "QID1",
                                  "ces": "QID2", "comment": "QID3_TEXT", "unit": "hotline"}},
    )
    with running_client(settings) as client:
        yield client


def test_typeform_webhook_with_api_key(adapters_client, kafka):
    r = adapters_client.post("/v1/webhooks/typeform", json=TYPEFORM, headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json()["event_ids"] == ["typeform:a3a12ec67a1365927098a606107fac15"]
    [record] = read_topic(kafka.bootstrap_servers, adapters_client.app.state.settings.topics.raw, 1)
    e = FeedbackEvent.model_validate_json(record.value)
    assert record.key == b"typeform:a3a12ec67a1365927098a606107fac15"
    assert (e.touchpoint, e.source, e.unit, e.customer_id) == ("survey_email", "typeform-shop", "berlin-mitte", "c-981")
    assert [(x.metric, x.value) for x in e.responses] == [("nps", 9), ("csat", 4)]
    assert e.comment.text == "Schnelle Lieferung"
    assert e.occurred_at.isoformat() == "2026-01-18T18:17:02+00:00"


def test_typeform_signature_replaces_the_api_key(adapters_client):
    body = orjson.dumps(TYPEFORM)
    sig = "sha256=" + base64.b64encode(hmac.new(b"tf-secret", body, hashlib.sha256).digest()).decode()
    headers = {"content-type": "application/json"}
    ok = adapters_client.post("/v1/webhooks/typeform", content=body, headers={**headers, "typeform-signature": sig})
    assert ok.status_code == 202, ok.text
    bad = adapters_client.post("/v1/webhooks/typeform", content=body,
                               headers={**headers, "typeform-signature": "sha256=AAAA"})
    assert bad.status_code == 401


def test_typeform_errors(adapters_client):
    unknown = {**TYPEFORM, "form_response": {**TYPEFORM["form_response"], "form_id": "other"}}
    r = adapters_client.post("/v1/webhooks/typeform", json=unknown, headers=AUTH)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["form_id"]
    empty = {**TYPEFORM, "form_response": {**TYPEFORM["form_response"], "answers": []}}
    r = adapters_client.post("/v1/webhooks/typeform", json=empty, headers=AUTH)
    assert r.status_code == 422 and "at least one response or a comment" in r.text
    r = adapters_client.post("/v1/webhooks/typeform", json={"event_type": "ping"}, headers=AUTH)
    assert r.status_code == 422
    r = adapters_client.post("/v1/webhooks/typeform", content=b"{", headers=AUTH)
    assert r.status_code == 400


def test_qualtrics_response(adapters_client, kafka):
    r = adapters_client.post("/v1/webhooks/qualtrics?survey_id=SV_123", json=QUALTRICS, headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json()["event_ids"] == ["qualtrics:R_1abcXYZ"]
    # The bare response object (no "result" wrapper) is accepted too; same id, so dedup works.
    r = adapters_client.post("/v1/webhooks/qualtrics", json=QUALTRICS["result"], headers=AUTH)
    assert r.json()["event_ids"] == ["qualtrics:R_1abcXYZ"]
    records = read_topic(kafka.bootstrap_servers, adapters_client.app.state.settings.topics.raw, 2)
    e = FeedbackEvent.model_validate_json(records[0].value)
    assert (e.touchpoint, e.source, e.unit, e.segment, e.customer_id) == (
        "call_centre", "qualtrics-ivr", "hotline", "business", "c-77")
    assert [(x.metric, x.value) for x in e.responses] == [("nps", 3), ("ces", 6)]
    assert e.comment.text == "Zu lange Wartezeit"
    assert adapters_client.post("/v1/webhooks/qualtrics", json={"values": {}}, headers=AUTH).status_code == 422
    assert adapters_client.post("/v1/webhooks/qualtrics", json=QUALTRICS).status_code == 401
