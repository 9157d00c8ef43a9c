"""Request body -> list of candidate items (not yet validated).

Accepted bodies, by media type (parameters such as `charset` are ignored):

* `application/json`: one event (object) or a batch (array of events).
  With `ce-specversion`/`ce-type`/`ce-source`/`ce-id` headers it is a CloudEvent in
  binary mode: the body is our event, the headers its envelope.
* `application/x-ndjson` (also `application/ndjson`, `application/jsonl`): one event a
  line, always a batch; a malformed line is an item error, the other lines still count.
* `application/cloudevents+json`: one CloudEvent in structured mode, our event in `data`.
* `application/cloudevents-batch+json`: an array of structured CloudEvents, a batch.

CloudEvents: `specversion` must be 1.0 and `id`, `source`, `type` non-empty; `data` (or
`data_base64`) holds the FeedbackEvent. When the event has no `event_id`, it becomes a
UUIDv5 of the CloudEvent's `source` and `id` (which CloudEvents defines as unique), so a
redelivered CloudEvent keeps its id.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.ingest.problems import Problem

JSON = "application/json"
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/jsonlines"})
CE_STRUCTURED = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"
SUPPORTED = sorted({JSON, CE_STRUCTURED, CE_BATCH, *NDJSON_TYPES})

_CE_NAMESPACE = uuid.UUID("6b0c1d3e-5d1e-4a57-9b1e-6b7370000002")
_CE_REQUIRED = ("id", "source", "type")


@dataclass
class Parsed:
    """Candidate items in request order; items with an entry in `errors` are already rejected."""

    items: list[Any]
    batch: bool
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # Field-path prefix of each item inside the request document (e.g. ("data",) for CloudEvents).
    loc_prefix: tuple[str | int, ...] = ()
    malformed: int = 0


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def cloudevent_event_id(source: str, ce_id: str) -> str:
    return str(uuid.uuid5(_CE_NAMESPACE, f"{source}\n{ce_id}"))


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem("malformed-json", f"The body is not valid JSON: {exc}") from None


def _check_count(n: int, max_items: int) -> None:
    if n > max_items:
        raise Problem("batch-too-large", f"The batch has {n} items; at most {max_items} are accepted.")


def parse_body(body: bytes, content_type: str | None, headers: Mapping[str, str], max_items: int) -> Parsed:
    mt = media_type(content_type)
    if mt == JSON:
        if "ce-specversion" in headers:
            return _binary_cloudevent(body, headers)
        doc = _loads(body)
        if isinstance(doc, list):
            _check_count(len(doc), max_items)
            return Parsed(doc, batch=True)
        return Parsed([doc], batch=False)
    if mt in NDJSON_TYPES:
        return _ndjson(body, max_items)
    if mt == CE_STRUCTURED:
        doc = _loads(body)
        parsed = Parsed([None], batch=False, loc_prefix=("data",))
        _structured(doc, 0, parsed)
        return parsed
    if mt == CE_BATCH:
        doc = _loads(body)
        if not isinstance(doc, list):
            raise Problem("malformed-request", f"{CE_BATCH} must be a JSON array of CloudEvents.")
        _check_count(len(doc), max_items)
        parsed = Parsed([None] * len(doc), batch=True, loc_prefix=("data",))
        for i, ce in enumerate(doc):
            _structured(ce, i, parsed)
        return parsed
    shown = mt or "no Content-Type"
    raise Problem("unsupported-media-type", f"{shown} is not accepted; use one of {', '.join(SUPPORTED)}.")


def _ndjson(body: bytes, max_items: int) -> Parsed:
    lines = [line for line in body.split(b"\n") if line.strip()]
    _check_count(len(lines), max_items)
    parsed = Parsed([None] * len(lines), batch=True)
    for i, line in enumerate(lines):
        try:
            parsed.items[i] = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            parsed.errors[i] = [{"index": i, "loc": [], "msg": f"malformed JSON: {exc}"}]
            parsed.malformed += 1
    return parsed


def _envelope_errors(ce: Mapping[str, Any], index: int, prefix: str = "") -> list[dict[str, Any]]:
    errors = []
    if str(ce.get("specversion")) != "1.0":
        errors.append({"index": index, "loc": [prefix + "specversion"], "msg": "specversion must be 1.0"})
    for attr in _CE_REQUIRED:
        value = ce.get(attr)
        if not isinstance(value, str) or not value:
            errors.append({"index": index, "loc": [prefix + attr], "msg": f"CloudEvents attribute {attr} is required"})
    dct = ce.get("datacontenttype")
    if dct is not None and not (media_type(dct) == JSON or media_type(dct).endswith("+json")):
        errors.append({"index": index, "loc": [prefix + "datacontenttype"], "msg": "data must be JSON"})
    return errors


def _with_ce_id(data: Any, ce: Mapping[str, Any]) -> Any:
    if isinstance(data, dict) and data.get("event_id") is None:
        data = {**data, "event_id": cloudevent_event_id(ce["source"], ce["id"])}
    return data


def _structured(ce: Any, index: int, parsed: Parsed) -> None:
    if not isinstance(ce, dict):
        parsed.errors[index] = [{"index": index, "loc": [], "msg": "a CloudEvent must be a JSON object"}]
        return
    errors = _envelope_errors(ce, index)
    data: Any = None
    if "data" in ce:
        data = ce["data"]
    elif "data_base64" in ce:
        try:
            data = orjson.loads(base64.b64decode(ce["data_base64"], validate=True))
        except (binascii.Error, ValueError, TypeError):
            errors.append({"index": index, "loc": ["data_base64"], "msg": "data_base64 is not base64 JSON"})
    else:
        errors.append({"index": index, "loc": ["data"], "msg": "the CloudEvent has no data"})
    if errors:
        parsed.errors[index] = errors
        return
    parsed.items[index] = _with_ce_id(data, ce)


def _binary_cloudevent(body: bytes, headers: Mapping[str, str]) -> Parsed:
    ce = {attr: headers.get(f"ce-{attr}") for attr in ("specversion", *_CE_REQUIRED)}
    errors = _envelope_errors(ce, 0, prefix="ce-")
    if errors:
        raise Problem("validation-failed", "The CloudEvents headers are incomplete.", errors=errors)
    return Parsed([_with_ce_id(_loads(body), ce)], batch=False)
