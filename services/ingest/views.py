"""HTTP routes: thin; the work is in parsing, auth, adapters and the ingestor."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from services.ingest.adapters import qualtrics, typeform
from services.ingest.auth import Principal
from services.ingest.metrics import exposition
from services.ingest.parsing import CE_BATCH, CE_STRUCTURED, JSON, Parsed, parse_body
from services.ingest.problems import MEDIA_TYPE, Problem

router = APIRouter()

_EVENT_REF = {"$ref": "#/components/schemas/FeedbackEvent"}
_EVENTS = {"oneOf": [_EVENT_REF, {"type": "array", "items": _EVENT_REF}]}
_CLOUDEVENT = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "data"],
    "properties": {"specversion": {"const": "1.0"}, "id": {"type": "string"}, "source": {"type": "string"},
                   "type": {"type": "string"}, "data": _EVENT_REF},
}
_ACCEPTED = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "rejected": {"type": "integer"},
        "event_ids": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object"}},
        "results": {"type": "array", "items": {"type": "object"}},
    },
}
_PROBLEM = {"content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_ERRORS = {str(code): {"description": text, **_PROBLEM} for code, text in (
    (400, "Malformed JSON."), (401, "Missing or invalid API key."),
    (403, "Key not allowed for the touchpoint or source."), (413, "Body or batch too large."),
    (415, "Unsupported media type."), (422, "Schema violations (all items invalid)."),
    (429, "Rate limit; see Retry-After."), (503, "Kafka unavailable or buffer full; see Retry-After."))}
_FEEDBACK_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {
        JSON: {"schema": _EVENTS},
        "application/x-ndjson": {"schema": {"type": "string", "description": "One FeedbackEvent a line."}},
        CE_STRUCTURED: {"schema": _CLOUDEVENT},
        CE_BATCH: {"schema": {"type": "array", "items": _CLOUDEVENT}},
    }},
    "responses": {"202": {"description": "Acknowledged by Kafka (acks=all).",
                          "content": {JSON: {"schema": _ACCEPTED}}}, **_ERRORS},
}
_WEBHOOK_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "object"}}}},
    "responses": {"202": {"description": "Acknowledged by Kafka.", "content": {JSON: {"schema": _ACCEPTED}}},
                  **_ERRORS},
}


async def read_body(request: Request) -> bytes:
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem("body-too-large", f"The body has {declared} bytes; at most {limit} are accepted.")
    # The ASGI messages themselves, not `request.stream()`: creating and finalising an async
    # generator per request (which the event loop keeps track of) was most of reading a small body.
    receive = request.receive
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Problem("body-too-large", f"The body exceeds {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem("malformed-json", f"The body is not valid JSON: {exc}") from None


@router.post("/v1/feedback", status_code=202, openapi_extra=_FEEDBACK_OPENAPI, tags=["ingest"],
             summary="Send feedback events (one, a batch, NDJSON, CloudEvents)")
async def post_feedback(request: Request) -> Response:
    state = request.app.state
    principal = state.keys.authenticate(request.headers)
    body = await read_body(request)
    parsed = parse_body(body, request.headers.get("content-type"), request.headers,
                        state.settings.max_batch_items)
    return await state.ingestor.ingest(parsed, principal)


@router.post("/v1/webhooks/typeform", status_code=202, openapi_extra=_WEBHOOK_OPENAPI, tags=["webhooks"],
             summary="Typeform form_response webhook")
async def post_typeform(request: Request) -> Response:
    state = request.app.state
    body = await read_body(request)
    payload = _json(body)
    mapping = typeform.mapping_for(payload, state.settings.typeform_mappings)
    if mapping.secret and typeform.signature_valid(mapping.secret, body,
                                                   request.headers.get("typeform-signature")):
        principal = Principal(f"typeform:{payload['form_response'].get('form_id')}",
                              frozenset({mapping.touchpoint}), frozenset({mapping.source}))
    else:
        principal = state.keys.authenticate(request.headers)
    parsed = Parsed([typeform.to_event(payload, mapping)], batch=False)
    return await state.ingestor.ingest(parsed, principal)


@router.post("/v1/webhooks/qualtrics", status_code=202, openapi_extra=_WEBHOOK_OPENAPI, tags=["webhooks"],
             summary="Qualtrics survey response")
async def post_qualtrics(request: Request, survey_id: str | None = None) -> Response:
    state = request.app.state
    principal = state.keys.authenticate(request.headers)
    payload = qualtrics.unwrap(_json(await read_body(request)))
    mapping = qualtrics.mapping_for(payload, survey_id, state.settings.qualtrics_mappings)
    parsed = Parsed([qualtrics.to_event(payload, mapping)], batch=False)
    return await state.ingestor.ingest(parsed, principal)


@router.get("/healthz", tags=["ops"], summary="The process is alive")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


@router.get("/readyz", tags=["ops"], summary="Ready: the Kafka broker is reachable")
async def readyz(request: Request) -> Response:
    if await request.app.state.producer.ready():
        return Response(b'{"status":"ready"}', media_type=JSON)
    retry = str(request.app.state.settings.retry_after_s)
    return Response(b'{"status":"unavailable","reason":"kafka not reachable"}', status_code=503,
                    media_type=JSON, headers={"Retry-After": retry})


@router.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(exposition(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Kundensprechen ingest API",
        swagger_js_url="/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/docs/static/swagger-ui.css",
        swagger_favicon_url="/docs/static/favicon-32x32.png",
    )
