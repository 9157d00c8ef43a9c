"""Emitters for touchpoint systems: send FeedbackEvents over HTTP (to ingest) or to Kafka.

Both assign each event its `event_id` before the first try (`with_event_id()`), so every
retry carries the same id and downstream stores it once.

* `HttpEmitter`: batches events into JSON-array requests to `POST /v1/feedback`; retries
  transport errors, 429, 502-504 with exponential backoff and full jitter, waiting at least
  what `Retry-After` asks; reports per-item rejections; raises `EmitError` for requests that
  retrying cannot fix (400, 401, 403, 413, 415).
* `KafkaEmitter`: for systems inside the trust boundary: kafka-python producer with
  acks=all, idempotence (on by default), linger batching and unbounded retries within
  `delivery_timeout_ms`; applies the same redaction as ingest.

    with HttpEmitter("http://ingest:8000", api_key="…") as emitter:
        emitter.emit(event)          # sent when `batch_size` events are buffered
    # leaving the block flushes; emitter.results holds what was accepted/rejected
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
import orjson

from schemas.feedback import FeedbackEvent
from schemas.topics import Topics
from services.common.kafka import security_config
from services.common.settings import KafkaSettings

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class EmitError(Exception):
    def __init__(self, status: int, problem: Mapping[str, Any] | None, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.problem = dict(problem or {})


@dataclass
class EmitResult:
    accepted: list[str] = field(default_factory=list)
    # Rejected items: {"event_id", "errors": [{index, loc, msg}]}; index is within the batch.
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: EmitResult) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected


def _as_event(event: FeedbackEvent | Mapping[str, Any]) -> FeedbackEvent:
    if not isinstance(event, FeedbackEvent):
        event = FeedbackEvent.model_validate(event)
    return event.with_event_id()


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


class HttpEmitter:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        batch_size: int = 500,
        max_attempts: int = 8,
        backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = client or httpx.Client(base_url=base_url, timeout=timeout_s)
        self._headers = headers
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._buffer: list[FeedbackEvent] = []
        self.results = EmitResult()

    def emit(self, event: FeedbackEvent | Mapping[str, Any]) -> str:
        """Buffer one event; sends a batch when full. Returns the event's id."""
        e = _as_event(event)
        self._buffer.append(e)
        if len(self._buffer) >= self.batch_size:
            self.flush()
        return e.event_id  # type: ignore[return-value]

    def flush(self) -> EmitResult:
        events, self._buffer = self._buffer, []
        result = self.send(events) if events else EmitResult()
        self.results.extend(result)
        return result

    def send(self, events: Iterable[FeedbackEvent | Mapping[str, Any]]) -> EmitResult:
        """Send events now (one request per `batch_size`), with retries."""
        batch = [_as_event(e) for e in events]
        result = EmitResult()
        for start in range(0, len(batch), self.batch_size):
            result.extend(self._send_batch(batch[start : start + self.batch_size]))
        return result

    def _send_batch(self, batch: list[FeedbackEvent]) -> EmitResult:
        body = orjson.dumps([e.model_dump(mode="json", exclude_none=True) for e in batch])
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._client.post("/v1/feedback", content=body, headers=self._headers)
            except httpx.TransportError:
                if attempt == self.max_attempts:
                    raise
                self._sleep(attempt, 0.0)
                continue
            if response.status_code == 202:
                doc = response.json()
                rejected = [{"event_id": batch[r["index"]].event_id, "errors": r.get("errors", [])}
                            for r in doc.get("results", []) if r.get("status") == "rejected"]
                return EmitResult(list(doc["event_ids"]), rejected)
            problem = self._problem(response)
            if response.status_code == 422 and problem.get("errors") is not None:
                by_index: dict[int, list[Any]] = {}
                for err in problem["errors"]:
                    by_index.setdefault(int(err.get("index", 0)), []).append(err)
                return EmitResult([], [{"event_id": batch[i].event_id, "errors": errs}
                                       for i, errs in sorted(by_index.items()) if i < len(batch)])
            if response.status_code not in RETRY_STATUS or attempt == self.max_attempts:
                raise EmitError(response.status_code, problem, str(problem.get("detail", response.text)))
            self._sleep(attempt, _retry_after(response))
        raise AssertionError("unreachable")

    @staticmethod
    def _problem(response: httpx.Response) -> dict[str, Any]:
        try:
            doc = response.json()
            return doc if isinstance(doc, dict) else {}
        except ValueError:
            return {}

    def _sleep(self, attempt: int, at_least: float) -> None:
        backoff = random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
        time.sleep(max(backoff, at_least))

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KafkaEmitter:
    def __init__(
        self,
        kafka: KafkaSettings | str,
        topic: str = Topics.model_fields["raw"].default,
        *,
        idempotent: bool = True,
        linger_ms: int = 5,
        batch_bytes: int = 256 * 1024,
        delivery_timeout_s: float = 120.0,
        redaction: str = "internal",
    ) -> None:
        from kafka import KafkaProducer

        from services.ingest.redaction import Redactor

        settings = kafka if isinstance(kafka, KafkaSettings) else KafkaSettings.model_validate({"bootstrap_servers": kafka})
        self.topic = topic
        self._redact = Redactor(redaction)
        self._producer = KafkaProducer(
            **security_config(settings),
            client_id="ksp-emitter",
            acks="all",
            enable_idempotence=idempotent,
            retries=2**31 - 1,
            linger_ms=linger_ms,
            batch_size=batch_bytes,
            delivery_timeout_ms=int(delivery_timeout_s * 1000),
            request_timeout_ms=min(int(settings.request_timeout_s * 1000), int(delivery_timeout_s * 1000) - 1),
        )
        self._pending: list[tuple[str, Any]] = []

    def emit(self, event: FeedbackEvent | Mapping[str, Any]) -> str:
        """Queue one event (key = event_id); `flush()` waits for the acknowledgements."""
        e = self._redact(_as_event(event))
        event_id = str(e.event_id)
        value = orjson.dumps(e.model_dump(mode="json"))
        self._pending.append((event_id, self._producer.send(self.topic, value=value, key=event_id.encode())))
        return event_id

    def flush(self, timeout_s: float | None = None) -> list[str]:
        """Wait until every queued event is acknowledged; raises the first delivery error."""
        pending, self._pending = self._pending, []
        self._producer.flush(timeout=timeout_s)
        for _, future in pending:
            future.get(timeout=0)  # raises KafkaError if the delivery failed
        return [event_id for event_id, _ in pending]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
