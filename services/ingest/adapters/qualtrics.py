"""Qualtrics survey response -> FeedbackEvent.

Endpoint: `POST /v1/webhooks/qualtrics` (API key required). Body: the answer of Qualtrics'
`GET /API/v3/surveys/{surveyId}/responses/{responseId}` (`{"result": {...}}`), or the bare
response object `{"responseId": ..., "values": {...}}` (what a Qualtrics workflow's web
service task can post). The mapping is chosen by `surveyId` (in the body, or the query
parameter `survey_id`; `qualtrics_mappings`, `"*"` as fallback).

| FeedbackEvent   | Qualtrics response                                                    |
|-----------------|-----------------------------------------------------------------------|
| event_id        | `qualtrics:` + `responseId` (e.g. `R_1abcXYZ`)                         |
| occurred_at     | `values.recordedDate`, else `values.endDate` (ISO 8601, UTC)           |
| touchpoint, source | mapping `touchpoint`, `source` (default survey_email, "qualtrics") |
| unit, segment   | mapping `unit`/`segment`, else embedded data `values.unit`/`segment`  |
| customer_id     | embedded data `values.customer_id` (mapping `customer_id_field`)      |
| responses nps   | `values[<nps>]`, e.g. `QID1` (0-10; `QID1_NPS_GROUP` is ignored)       |
| responses csat  | `values[<csat>]` on `csat_scale` (default 1-5)                         |
| responses ces   | `values[<ces>]` on `ces_scale` (default 1-7)                           |
| comment.text    | `values[<comment>]`, e.g. `QID3_TEXT`                                  |

Numeric answers given as strings are converted; unanswered questions are left out.
"""

from __future__ import annotations

from typing import Any

from services.ingest.adapters import (
    add_scope,
    pick_mapping,
    response,
    unexpected_shape,
    vendor_event_id,
)
from services.ingest.problems import Problem
from services.ingest.settings import QualtricsMapping


def _invalid(msg: str, loc: list[str]) -> Problem:
    return Problem("validation-failed", f"Not a Qualtrics response: {msg}.",
                   errors=[{"index": 0, "loc": loc, "msg": msg}])


def unwrap(payload: Any) -> dict[str, Any]:
    if isinstance(payload, dict) and isinstance(payload.get("result"), dict):
        payload = payload["result"]
    if not isinstance(payload, dict) or not isinstance(payload.get("values"), dict):
        raise _invalid("values is missing", ["values"])
    if not isinstance(payload.get("responseId"), str) or not payload["responseId"]:
        raise _invalid("responseId is missing", ["responseId"])
    return payload


def mapping_for(payload: dict[str, Any], survey_id: str | None,
                mappings: dict[str, QualtricsMapping]) -> QualtricsMapping:
    return pick_mapping(mappings, payload.get("surveyId") or survey_id, "surveyId")


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def to_event(payload: dict[str, Any], m: QualtricsMapping) -> dict[str, Any]:
    """The FeedbackEvent candidate (validated later like any event); 422 for odd shapes."""
    try:
        return _to_event(payload, m)
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise unexpected_shape("Qualtrics", exc) from None


def _to_event(payload: dict[str, Any], m: QualtricsMapping) -> dict[str, Any]:
    values = payload["values"]
    event: dict[str, Any] = {
        "event_id": vendor_event_id("qualtrics", payload["responseId"]),
        "occurred_at": values.get("recordedDate") or values.get("endDate"),
        "touchpoint": m.touchpoint.value,
        "source": m.source,
        "responses": [],
    }
    add_scope(event, unit=m.unit or values.get(m.unit_field), segment=m.segment or values.get(m.segment_field),
              customer_id=values.get(m.customer_id_field))
    for metric, key, scale in (("nps", m.nps, None), ("csat", m.csat, m.csat_scale), ("ces", m.ces, m.ces_scale)):
        if key and values.get(key) not in (None, ""):
            event["responses"].append(response(metric, _number(values[key]), scale))
    if m.comment and isinstance(values.get(m.comment), str) and values[m.comment].strip():
        event["comment"] = {"text": values[m.comment]}
    return event
