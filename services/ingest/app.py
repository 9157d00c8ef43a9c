"""`create_app(settings)`: wiring of the ingest service (no logic here)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.feedback import FeedbackEvent
from services.ingest.auth import KeyStore
from services.ingest.fastpath import FastPathAPI, FastRoute
from services.ingest.ingestor import Ingestor
from services.ingest.metrics import IngestMetrics, create_metrics, observe_request
from services.ingest.problems import Problem, openapi_problem_schema
from services.ingest.producer import IngestProducer
from services.ingest.ratelimit import RateLimiter
from services.ingest.redaction import Redactor
from services.ingest.settings import IngestSettings
from services.ingest.views import post_feedback, router

log = logging.getLogger("ksp.ingest")

DESCRIPTION = """\
Every touchpoint's feedback in: `POST /v1/feedback` takes one FeedbackEvent, a JSON array,
NDJSON, or CloudEvents (structured, batch or binary mode) and answers **202 only after Kafka
acknowledged every accepted event (acks=all)**.

**Idempotency contract.** Each event's `event_id` is its idempotency key and the Kafka
message key. Send your own id, or leave it out and ingest derives one deterministically
from the content (UUIDv5; for CloudEvents from `source`+`id`, for webhooks from the vendor's
response id). Delivery is at-least-once: after a timeout, 429 or 503, resend the *same*
events with the *same* ids; downstream (the scoring sink) stores each `event_id` once.

**Batches.** Valid items are accepted, invalid items are reported by `index` (202 with
per-item `results`); a batch in which no item is valid is 422. Errors are RFC 9457
`application/problem+json` with `errors: [{index, loc, msg}]`.
"""


class RequestMetrics:
    """Pure ASGI middleware: request count/latency by route template, in-flight gauge."""

    def __init__(self, app: ASGIApp, metrics: IngestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.inflight_requests.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.inflight_requests.dec()
            observe_request(self.metrics, getattr(scope.get("route"), "path", "unmatched"), scope["method"],
                            status, started)


def _instance(request: Request) -> str:
    return request.url.path


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    # Refused before the body was parsed: counted once per request (the ingestor counts the
    # events of everything it parsed: malformed, invalid, forbidden, rate_limited, unavailable).
    if exc.slug == "unauthorized":
        request.app.state.metrics.events_rejected.labels("unauthorized").inc()
    elif exc.slug in ("body-too-large", "batch-too-large"):
        request.app.state.metrics.events_rejected.labels("too_large").inc()
    log.info("problem %s", exc.slug, extra={"status": exc.status, "path": request.url.path})
    return exc.response(_instance(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "malformed-request")
    return Problem(slug, str(exc.detail), status=exc.status_code,
                   headers=dict(exc.headers or {})).response(_instance(request))


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"index": 0, "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    return Problem("validation-failed", "The request is invalid.", errors=errors).response(_instance(request))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    return Problem("internal-error", "An unexpected error occurred; it has been logged.").response(
        _instance(request))


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        event_schema = FeedbackEvent.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(event_schema.pop("$defs", {}))
        components["FeedbackEvent"] = event_schema
        components["Problem"] = openapi_problem_schema()
        app.openapi_schema = schema
    return app.openapi_schema


def tune_gc(young_threshold: int) -> None:
    """Fewer young collections, and none of them traversing what start-up created (modules,
    schemas, the app): `gc.freeze` moves those objects out of the collector's generations."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


def _route(path: str) -> BaseRoute:
    return next(r for r in router.routes if getattr(r, "path", None) == path)


def create_app(settings: IngestSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    metrics = create_metrics(registry if registry is not None else REGISTRY)
    producer = IngestProducer(settings, metrics)
    ingestor = Ingestor(
        producer,
        RateLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst, settings.rate_limit_enabled),
        Redactor(settings.redaction, settings.redaction_phone_region),
        metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await producer.start()
        tune_gc(settings.gc_young_threshold)
        log.info("ingest ready to serve", extra={"topic": settings.topics.raw,
                                                 "auth": settings.auth_enabled})
        try:
            yield
        finally:
            await producer.stop()
            log.info("producer flushed and stopped")

    app = FastPathAPI(title="Kundensprechen ingest", version="1", description=DESCRIPTION,
                  docs_url=None, redoc_url=None, lifespan=lifespan,
                  telemetry={"tracing": settings.opentelemetry, "metrics": settings.opentelemetry,
                             "logs": settings.opentelemetry})
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.producer = producer
    app.state.ingestor = ingestor
    app.state.keys = KeyStore.from_settings(settings)
    app.include_router(router)
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static")
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
    if not settings.opentelemetry:  # with tracing on, every request takes FastAPI's own path
        app.fast_route = FastRoute(_route("/v1/feedback"), post_feedback, _problem, _unexpected, metrics)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
