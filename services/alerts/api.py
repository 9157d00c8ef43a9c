"""The alerts HTTP API (FastAPI, served inside the Faust worker on its loop via serve_asgi).

Health: /healthz, /readyz (the agent has partitions and the cases are rebuilt), /metrics, /docs.
Cases:  GET /v1/alerts (filters), GET /v1/alerts/{case_id} (with history),
        POST /v1/alerts/{case_id}/acknowledge|assign|resolve|comments (body: CaseCommand).
Silences: GET/POST /v1/silences, DELETE /v1/silences/{id}.
Deliveries: GET /v1/deliveries/parked, POST /v1/deliveries/parked/{id}/replay.
Closed loop: GET /v1/recovery. Console data: GET /v1/quality, GET /v1/customers/{id}/timeline,
GET /v1/stream (server-sent events). GET / serves the static console if it exists.
Errors are RFC 9457 problem+json with a stable `type` (404 not-found, 409 invalid-transition,
422 invalid-command / validation-failed).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.cases import CaseCommand, Silence
from services.alerts.cases.model import CaseError
from services.alerts.cases.store import CaseFilter
from services.alerts.service import AlertsRuntime, NotTheNotifier, case_summary
from services.common.statistics import mean_interval, nps_interval

PROBLEM_BASE = "https://kundensprechen.dev/problems/"
CONSOLE_DIR = Path(__file__).resolve().parent / "console"


def problem(status: int, slug: str, title: str, detail: str, instance: str | None = None,
            **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class SilenceRequest(BaseModel):
    matchers: dict[str, str] = Field(min_length=1, description="Label -> exact value; all must match.")
    created_by: str = Field(min_length=1, max_length=100)
    comment: str = Field("", max_length=4000)
    starts_at: datetime | None = Field(None, description="Default: now.")
    ends_at: datetime | None = Field(None, description="Default: starts_at + duration_s.")
    duration_s: float | None = Field(None, gt=0, description="Default 3600 when ends_at is unset.")


def _num(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, digits)


def _interval(iv: Any, digits: int = 3) -> dict[str, float | None]:
    return {"value": _num(iv.estimate, digits), "low": _num(iv.low, digits), "high": _num(iv.high, digits),
            "n": int(iv.n)}


QUALITY_SUMS = """
    sum(responses) AS n, sum(promoters) AS promoters, sum(passives) AS passives, sum(detractors) AS detractors,
    sum(csat_n) AS csat_n, sum(csat_sum) AS csat_sum, sum(csat_sumsq) AS csat_sumsq,
    sum(ces_n) AS ces_n, sum(ces_sum) AS ces_sum, sum(ces_sumsq) AS ces_sumsq,
    sum(sentiment_n) AS sentiment_n, sum(sentiment_sum) AS sentiment_sum,
    sum(sentiment_sumsq) AS sentiment_sumsq, sum(churn_intent) AS churn_intent, sum(complaints) AS complaints
"""


def _scores(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": int(row["n"]),
        "nps": _interval(nps_interval(row["promoters"], row["passives"], row["detractors"]), 2),
        "csat": _interval(mean_interval(row["csat_n"], row["csat_sum"], row["csat_sumsq"], bounds=(0, 100)), 2),
        "ces": _interval(mean_interval(row["ces_n"], row["ces_sum"], row["ces_sumsq"], bounds=(0, 100)), 2),
        "sentiment": _interval(mean_interval(row["sentiment_n"], row["sentiment_sum"], row["sentiment_sumsq"],
                                             bounds=(-1, 1)), 3),
        "churn_intent": int(row["churn_intent"]), "complaints": int(row["complaints"]),
    }


def quality_report(client: Any, db: str, hours: int, touchpoint: str | None, unit: str | None) -> dict[str, Any]:
    """Per touchpoint x unit over the last `hours`: n, NPS/CSAT/CES/sentiment with 95% intervals
    (summed from the hourly rollup behind `quality_hourly`, so segments pool correctly), an
    hourly series for sparklines, and the top themes from `theme_minute`."""
    where = ["hour >= toStartOfHour(now() - toIntervalHour({hours:UInt32}))"]
    params: dict[str, Any] = {"hours": hours}
    if touchpoint:
        where.append("touchpoint = {touchpoint:String}")
        params["touchpoint"] = touchpoint
    if unit:
        where.append("unit = {unit:String}")
        params["unit"] = unit
    cond = " AND ".join(where)
    totals = client.query(f"SELECT touchpoint, unit, {QUALITY_SUMS} FROM {db}.quality_hour WHERE {cond} "
                          "GROUP BY touchpoint, unit ORDER BY touchpoint, unit", parameters=params)
    series = client.query(f"SELECT touchpoint, unit, hour, {QUALITY_SUMS} FROM {db}.quality_hour WHERE {cond} "
                          "GROUP BY touchpoint, unit, hour ORDER BY touchpoint, unit, hour", parameters=params)
    theme_cond = cond.replace("hour >= toStartOfHour", "minute >= toStartOfHour")
    themes = client.query(
        f"SELECT touchpoint, unit, theme, sum(mentions) AS mentions, sum(negative_mentions) AS negative "
        f"FROM {db}.theme_minute WHERE {theme_cond} GROUP BY touchpoint, unit, theme "
        "ORDER BY touchpoint, unit, negative DESC, mentions DESC, theme LIMIT 5 BY touchpoint, unit",
        parameters=params)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in totals.named_results():
        groups[(row["touchpoint"], row["unit"])] = {"touchpoint": row["touchpoint"], "unit": row["unit"],
                                                    **_scores(row), "series": [], "top_themes": []}
    for row in series.named_results():
        group = groups.get((row["touchpoint"], row["unit"]))
        if group is None:
            continue
        scores = _scores(row)
        hour = row["hour"]
        group["series"].append({
            "hour": (hour.replace(tzinfo=UTC) if hour.tzinfo is None else hour).isoformat(),
            "n": scores["n"], "nps": scores["nps"]["value"], "csat": scores["csat"]["value"],
            "ces": scores["ces"]["value"], "sentiment": scores["sentiment"]["value"]})
    for row in themes.named_results():
        group = groups.get((row["touchpoint"], row["unit"]))
        if group is not None:
            group["top_themes"].append({"theme": row["theme"], "mentions": int(row["mentions"]),
                                        "negative_mentions": int(row["negative"])})
    return {"hours": hours, "generated_at": datetime.now(UTC).isoformat(), "groups": list(groups.values())}


TIMELINE_COLUMNS = ("event_id, occurred_at, accepted_at, touchpoint, source, unit, segment, nps, nps_category, "
                    "csat, ces, sqi, comment, language, sentiment, sentiment_label, themes, negative_themes, "
                    "churn_intent, complaint, recommend_intent")


def customer_timeline(client: Any, db: str, customer_id: str, limit: int) -> list[dict[str, Any]]:
    result = client.query(
        f"SELECT {TIMELINE_COLUMNS} FROM {db}.feedback_events FINAL WHERE customer_id = {{c:String}} "
        "ORDER BY occurred_at DESC, event_id LIMIT {limit:UInt32}", parameters={"c": customer_id, "limit": limit})
    rows = []
    for row in result.named_results():
        for key in ("occurred_at", "accepted_at"):
            at = row[key]
            row[key] = (at.replace(tzinfo=UTC) if at.tzinfo is None else at).isoformat()
        for key in ("csat", "ces", "sqi", "sentiment"):
            row[key] = _num(row[key])
        row["themes"], row["negative_themes"] = list(row["themes"]), list(row["negative_themes"])
        rows.append(row)
    return rows


def build_api(runtime: AlertsRuntime, registry: CollectorRegistry, *, ready: Callable[[], tuple[bool, int]],
              clickhouse: Callable[[], Any] | None = None, console_dir: Path | None = None) -> FastAPI:
    settings = runtime.settings
    db = settings.clickhouse.database
    api = FastAPI(title="Kundensprechen alerts", version="1",
                  description="Alert cases, silences, deliveries, closed-loop recovery and the ops "
                  "console's data. Errors are application/problem+json.")

    @api.exception_handler(CaseError)
    async def _case_error(request: Request, exc: CaseError) -> JSONResponse:
        titles = {404: "Not found", 409: "Invalid transition", 422: "Invalid command"}
        return problem(exc.status, exc.slug, titles.get(exc.status, "Error"), exc.detail, str(request.url.path),
                       case_id=exc.case_id)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem(422, "validation-failed", "Request failed validation",
                       f"{len(errors)} error(s) in the request", str(request.url.path), errors=errors)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail), str(request.url.path))

    def _query_ch(fn: Callable[..., Any], *args: Any) -> Any:
        if clickhouse is None:
            raise StarletteHTTPException(503, "ClickHouse is not configured")
        client = clickhouse()
        try:
            return fn(client, *args)
        finally:
            client.close()

    # -- health ----------------------------------------------------------------------------
    @api.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        assigned, partitions = ready()
        ok = assigned and runtime.started.is_set()
        return JSONResponse({"ready": ok, "partitions": partitions, "cases_rebuilt": runtime.started.is_set()},
                            status_code=200 if ok else 503)

    @api.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # -- cases -----------------------------------------------------------------------------
    @api.get("/v1/alerts", tags=["cases"])
    async def list_cases(state: str | None = None, severity: str | None = None, kind: str | None = None,
                         assignee: str | None = None, touchpoint: str | None = None, unit: str | None = None,
                         customer_id: str | None = None, rule: str | None = None,
                         limit: int = Query(500, ge=1, le=10_000)) -> dict[str, Any]:
        """Cases, newest change first. `firing` (alerts whose condition holds) and `parked`
        are kept for older clients."""
        where = CaseFilter(state=state, severity=severity, kind=kind, assignee=assignee, touchpoint=touchpoint,
                           unit=unit, customer_id=customer_id, rule=rule)
        cases = runtime.cases.query(where, limit)
        firing = [a.model_dump(mode="json") for a in runtime.evaluator.firing()]
        parked = [d.to_json() for d in runtime.parked()]
        for p in parked:
            p.pop("history", None)
        return {"count": len(cases), "cases": [case_summary(c) for c in cases], "counts": runtime.cases.counts(),
                "firing": firing, "parked": parked}

    @api.get("/v1/alerts/{case_id}", tags=["cases"])
    async def get_case(case_id: str) -> dict[str, Any]:
        return runtime.cases.get(case_id).model_dump(mode="json")

    async def _command(case_id: str, name: str, command: CaseCommand) -> dict[str, Any]:
        case = await runtime.command(case_id, name, command)
        return case.model_dump(mode="json")

    @api.post("/v1/alerts/{case_id}/acknowledge", tags=["cases"])
    async def acknowledge(case_id: str, command: CaseCommand) -> dict[str, Any]:
        return await _command(case_id, "acknowledge", command)

    @api.post("/v1/alerts/{case_id}/assign", tags=["cases"])
    async def assign(case_id: str, command: CaseCommand) -> dict[str, Any]:
        return await _command(case_id, "assign", command)

    @api.post("/v1/alerts/{case_id}/resolve", tags=["cases"])
    async def resolve(case_id: str, command: CaseCommand) -> dict[str, Any]:
        return await _command(case_id, "resolve", command)

    @api.post("/v1/alerts/{case_id}/comments", tags=["cases"])
    async def comment(case_id: str, command: CaseCommand) -> dict[str, Any]:
        return await _command(case_id, "comments", command)

    # -- silences --------------------------------------------------------------------------
    @api.get("/v1/silences", tags=["silences"])
    async def list_silences() -> dict[str, Any]:
        silences: list[Silence] = runtime.active_silences()
        return {"silences": [s.model_dump(mode="json") for s in silences]}

    @api.post("/v1/silences", status_code=201, tags=["silences"])
    async def create_silence(body: SilenceRequest) -> Any:
        try:
            silence = runtime.add_silence(body.matchers, created_by=body.created_by, comment=body.comment,
                                          starts_at=body.starts_at, ends_at=body.ends_at,
                                          duration_s=body.duration_s)
        except ValueError as exc:
            return problem(422, "invalid-silence", "Invalid silence", str(exc), "/v1/silences")
        return silence.model_dump(mode="json")

    @api.delete("/v1/silences/{silence_id}", status_code=204, tags=["silences"])
    async def delete_silence(silence_id: str) -> Response:
        if not runtime.remove_silence(silence_id):
            return problem(404, "not-found", "Not found", f"no silence {silence_id!r}", f"/v1/silences/{silence_id}")
        return Response(status_code=204)

    # -- deliveries ------------------------------------------------------------------------
    @api.get("/v1/deliveries/parked", tags=["deliveries"])
    async def parked() -> dict[str, Any]:
        items = [d.to_json() for d in runtime.parked()]
        return {"count": len(items), "deliveries": items, "notifier": runtime.notifying}

    @api.post("/v1/deliveries/parked/{delivery_id}/replay", status_code=202, tags=["deliveries"])
    async def replay(delivery_id: str) -> Any:
        path = f"/v1/deliveries/parked/{delivery_id}/replay"
        try:
            delivery = runtime.replay(delivery_id)
        except NotTheNotifier as exc:
            return problem(409, "not-the-notifier", "Not the notifying worker", str(exc), path)
        except KeyError:
            return problem(404, "not-found", "Not found", f"no delivery {delivery_id!r}", path)
        except ValueError as exc:
            return problem(409, "invalid-transition", "Not parked", str(exc), path)
        return delivery.to_json()

    # -- closed loop and console data ------------------------------------------------------
    @api.get("/v1/recovery", tags=["cases"])
    async def recovery(unit: str | None = None, touchpoint: str | None = None) -> dict[str, Any]:
        return runtime.cases.recovery(unit=unit, touchpoint=touchpoint)

    @api.get("/v1/quality", tags=["console"])
    async def quality(hours: int = Query(24, ge=1, le=24 * 90), touchpoint: str | None = None,
                      unit: str | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(_query_ch, quality_report, db, hours, touchpoint or None, unit or None)

    @api.get("/v1/customers/{customer_id}/timeline", tags=["console"])
    async def timeline(customer_id: str, limit: int = Query(200, ge=1, le=5000)) -> dict[str, Any]:
        events = await asyncio.to_thread(_query_ch, customer_timeline, db, customer_id, limit)
        cases = runtime.cases.query(CaseFilter(customer_id=customer_id))
        return {"customer_id": customer_id, "count": len(events), "events": events,
                "cases": [case_summary(c) for c in cases]}

    @api.get("/v1/stream", tags=["console"])
    async def stream(request: Request) -> StreamingResponse:
        """Server-sent events: `case` (every case event), `alert`, `delivery`, `silence`, and a
        periodic `quality` tick (last hour per touchpoint x unit)."""
        queue = runtime.hub.subscribe()
        interval = settings.stream_quality_interval_s

        async def quality_tick() -> dict[str, Any] | None:
            if clickhouse is None:
                return None
            try:
                return await asyncio.to_thread(_query_ch, quality_report, db, 1, None, None)
            except Exception as exc:  # noqa: BLE001
                return {"error": repr(exc)}

        async def events() -> AsyncIterator[bytes]:
            loop = asyncio.get_running_loop()
            next_quality = loop.time()
            try:
                yield b": connected\nretry: 3000\n\n"
                while True:
                    if await request.is_disconnected():
                        return
                    if loop.time() >= next_quality:
                        next_quality = loop.time() + interval
                        data = await quality_tick()
                        if data is not None:
                            yield f"event: quality\ndata: {json.dumps(data)}\n\n".encode()
                    try:
                        kind, data = await asyncio.wait_for(queue.get(), timeout=min(1.0, interval))
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()
            finally:
                runtime.hub.unsubscribe(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    directory = console_dir or settings.console_dir or CONSOLE_DIR
    if directory.is_dir():
        from starlette.staticfiles import StaticFiles

        api.mount("/", StaticFiles(directory=directory, html=True), name="console")
    return api
