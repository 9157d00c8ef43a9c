"""Typeform webhook (`event_type: form_response`) -> FeedbackEvent.

Endpoint: `POST /v1/webhooks/typeform`. The mapping is chosen by `form_response.form_id`
(`typeform_mappings`, `"*"` as fallback). Authentication: an API key, or, when the mapping
has a `secret`, a valid `Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>`.

| FeedbackEvent   | Typeform payload                                                     |
|-----------------|----------------------------------------------------------------------|
| event_id        | `typeform:` + `form_response.token` (the response's unique token)     |
| occurred_at     | `form_response.submitted_at`                                         |
| touchpoint, source | mapping `touchpoint`, `source` (default survey_email, "typeform") |
| unit, segment   | mapping `unit`/`segment`, else hidden fields `unit`/`segment`        |
| customer_id     | hidden field `customer_id` (mapping `customer_id_hidden`)            |
| responses nps   | answer whose `field.ref` (or `field.id`) = mapping `nps`; `number`   |
| responses csat  | answer for mapping `csat`; `number` on `csat_scale` (default 1-5)    |
| responses ces   | answer for mapping `ces`; `number` on `ces_scale` (default 1-7)      |
| comment.text    | answer for mapping `comment`; `text`                                 |
| internal        | true iff touchpoint is `internal`                                    |

Unanswered questions are left out; an event with neither measure nor comment is a 422.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from services.ingest.adapters import (
    add_scope,
    pick_mapping,
    response,
    unexpected_shape,
    vendor_event_id,
)
from services.ingest.problems import Problem
from services.ingest.settings import TypeformMapping


def _invalid(msg: str, loc: list[str]) -> Problem:
    return Problem("validation-failed", f"Not a Typeform form_response: {msg}.",
                   errors=[{"index": 0, "loc": loc, "msg": msg}])


def mapping_for(payload: Any, mappings: dict[str, TypeformMapping]) -> TypeformMapping:
    if not isinstance(payload, dict) or not isinstance(payload.get("form_response"), dict):
        raise _invalid("form_response is missing", ["form_response"])
    return pick_mapping(mappings, payload["form_response"].get("form_id"), "form_id")


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def _answer_value(answer: dict[str, Any]) -> Any:
    kind = answer.get("type")
    if kind == "choice":
        return (answer.get("choice") or {}).get("label")
    return answer.get(kind) if kind else None


def to_event(payload: dict[str, Any], m: TypeformMapping) -> dict[str, Any]:
    """The FeedbackEvent candidate (validated later like any event); 422 for odd shapes."""
    try:
        return _to_event(payload, m)
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise unexpected_shape("Typeform", exc) from None


def _to_event(payload: dict[str, Any], m: TypeformMapping) -> dict[str, Any]:
    fr = payload["form_response"]
    answers: dict[str, Any] = {}
    for a in fr.get("answers") or []:
        if isinstance(a, dict) and isinstance(a.get("field"), dict):
            value = _answer_value(a)
            for k in ("ref", "id"):
                if a["field"].get(k):
                    answers[a["field"][k]] = value
    hidden = fr.get("hidden") or {}
    token = fr.get("token")
    if not isinstance(token, str) or not token:
        raise _invalid("form_response.token is missing", ["form_response", "token"])
    event: dict[str, Any] = {
        "event_id": vendor_event_id("typeform", token),
        "occurred_at": fr.get("submitted_at"),
        "touchpoint": m.touchpoint.value,
        "source": m.source,
        "responses": [],
    }
    add_scope(event, unit=m.unit or hidden.get(m.unit_hidden), segment=m.segment or hidden.get(m.segment_hidden),
              customer_id=hidden.get(m.customer_id_hidden))
    for metric, ref, scale in (("nps", m.nps, None), ("csat", m.csat, m.csat_scale), ("ces", m.ces, m.ces_scale)):
        if ref and answers.get(ref) is not None:
            event["responses"].append(response(metric, answers[ref], scale))
    if m.comment and isinstance(answers.get(m.comment), str) and answers[m.comment].strip():
        event["comment"] = {"text": answers[m.comment]}
    return event
