"""The ingest pipeline behind every endpoint: validate -> redact -> scope -> produce -> answer.

Batch contract: valid items are accepted and invalid ones reported by index; the answer is
202 when at least one item was accepted (with per-item `results` and a flat `errors` list),
422 (400 when every item was malformed JSON) when none was. A single event is 202 or a
problem. Items outside the key's scope make the whole request 403 (a configuration error,
not bad data); nothing of it is produced.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from schemas.feedback import FeedbackEvent
from services.ingest.auth import Principal, check_scope
from services.ingest.metrics import IngestMetrics, child
from services.ingest.parsing import Parsed
from services.ingest.problems import Problem
from services.ingest.producer import IngestProducer
from services.ingest.ratelimit import RateLimiter
from services.ingest.redaction import Redactor

log = logging.getLogger("ksp.ingest")
_EVENTS = TypeAdapter(list[FeedbackEvent])
_VALIDATE = _EVENTS.validator.validate_python  # without TypeAdapter's per-call argument handling


def _validate(parsed: Parsed) -> dict[int, FeedbackEvent]:
    """Validate every candidate in one call; on errors, record them per item and keep the rest."""
    if parsed.errors:
        indices: Sequence[int] = [i for i in range(len(parsed.items)) if i not in parsed.errors]
        candidates = [parsed.items[i] for i in indices]
    else:
        indices, candidates = range(len(parsed.items)), parsed.items
    try:
        return dict(zip(indices, _VALIDATE(candidates), strict=True))
    except ValidationError as exc:
        bad: set[int] = set()
        for err in exc.errors(include_url=False, include_input=False):
            pos, *rest = err["loc"]
            index = indices[int(pos)]
            bad.add(int(pos))
            parsed.errors.setdefault(index, []).append(
                {"index": index, "loc": [*parsed.loc_prefix, *rest], "msg": err["msg"], "type": err["type"]}
            )
        good = [k for k in range(len(indices)) if k not in bad]
        events = _VALIDATE([candidates[k] for k in good]) if good else []
        return {indices[k]: e for k, e in zip(good, events, strict=True)}


def _errors(parsed: Parsed) -> list[dict[str, Any]]:
    return [e for i in sorted(parsed.errors) for e in parsed.errors[i]]


def _accepted(parsed: Parsed, events: dict[int, FeedbackEvent], rejected: int) -> Response:
    """The 202 answer: ids of the accepted events; for batches also every item's outcome."""
    body: dict[str, Any] = {
        "accepted": len(events),
        "rejected": rejected,
        "event_ids": [e.event_id for e in events.values()],
    }
    if parsed.batch:
        body["errors"] = _errors(parsed)
        body["results"] = [
            {"index": i, "status": "accepted", "event_id": events[i].event_id} if i in events
            else {"index": i, "status": "rejected", "errors": parsed.errors.get(i, [])}
            for i in range(len(parsed.items))
        ]
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")


class Ingestor:
    def __init__(self, producer: IngestProducer, limiter: RateLimiter, redactor: Redactor,
                 metrics: IngestMetrics) -> None:
        self.producer = producer
        self.limiter = limiter
        self.redactor = redactor
        self.metrics = metrics

    async def ingest(self, parsed: Parsed, principal: Principal) -> Response:
        n = len(parsed.items)
        if n == 0:
            raise Problem("validation-failed", "The batch is empty.", errors=[])
        try:
            self.limiter.check(principal.name, n, principal.rate, principal.burst)
        except Problem:
            self.metrics.events_rejected.labels("rate_limited").inc(n)
            raise
        valid = _validate(parsed)
        rejected = n - len(valid)
        if parsed.malformed:
            self.metrics.events_rejected.labels("malformed").inc(parsed.malformed)
        if rejected - parsed.malformed:
            self.metrics.events_rejected.labels("invalid").inc(rejected - parsed.malformed)
        if not valid:
            raise self._nothing_valid(parsed, principal)
        # The id is derived before redaction, as the emitters do client-side: one event, one id.
        events = {i: self.redactor(e.with_event_id()) for i, e in valid.items()}
        try:
            check_scope(principal, events.items())
        except Problem:
            self.metrics.events_rejected.labels("forbidden").inc(n)
            raise
        produced = list(events.values())
        try:
            await self.producer.produce(produced)
        except Problem:
            self.metrics.events_rejected.labels("unavailable").inc(len(events))
            raise
        self._count_accepted(produced)
        return _accepted(parsed, events, rejected)

    def _nothing_valid(self, parsed: Parsed, principal: Principal) -> Problem:
        n = len(parsed.items)
        log.info("request rejected", extra={"key": principal.name, "items": n})
        if parsed.malformed == n:
            return Problem("malformed-json", "No item is valid JSON.", errors=_errors(parsed))
        what = "The event is" if not parsed.batch else "No item of the batch is"
        return Problem("validation-failed", f"{what} valid.", errors=_errors(parsed))

    def _count_accepted(self, events: list[FeedbackEvent]) -> None:
        if len(events) == 1:  # the single-event request: no tally needed
            child(self.metrics.events_accepted, events[0].touchpoint.value).inc()
            return
        for touchpoint, count in Counter(e.touchpoint.value for e in events).items():
            child(self.metrics.events_accepted, touchpoint).inc(count)
