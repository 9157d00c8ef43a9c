"""The pure processing contract: one raw Kafka message in, a scored event or a dead letter out.

Messages from the HTTP ingest and from touchpoints producing directly to the raw topic are
treated alike: whatever cannot be parsed or validated becomes a dead letter with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import ValidationError

from schemas.feedback import FeedbackEvent
from schemas.scored import ScoredEvent
from services.scoring.scorers.event import TextAnalyser, score_event

MAX_MESSAGE_BYTES = 256 * 1024


class DeadLetterReason(StrEnum):
    too_large = "too_large"
    not_utf8 = "not_utf8"
    not_json = "not_json"
    invalid_event = "invalid_event"
    scoring_failed = "scoring_failed"
    clickhouse_refused = "clickhouse_refused"  # by the sink: ClickHouse refused the scored row for good


@dataclass(frozen=True)
class RawMessage:
    value: bytes | None
    key: bytes | None
    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True)
class DeadLetter:
    message: RawMessage
    reason: DeadLetterReason
    detail: str

    def headers(self, source_topic: str) -> list[tuple[str, bytes]]:
        return [
            ("ksp-error-reason", self.reason.value.encode()),
            ("ksp-error-detail", self.detail[:2000].encode()),
            ("ksp-source-topic", source_topic.encode()),
            ("ksp-source-partition", str(self.message.partition).encode()),
            ("ksp-source-offset", str(self.message.offset).encode()),
        ]


def process_message(
    message: RawMessage, *, analyse_text: TextAnalyser, now: datetime
) -> ScoredEvent | DeadLetter:
    value = message.value or b""
    if len(value) > MAX_MESSAGE_BYTES:
        return DeadLetter(message, DeadLetterReason.too_large, f"{len(value)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DeadLetter(message, DeadLetterReason.not_utf8, str(exc))
    try:
        event = FeedbackEvent.model_validate_json(value)
    except ValidationError as exc:
        return _validation_dead_letter(message, exc)
    accepted_at = datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)
    try:
        return score_event(event, accepted_at=accepted_at, scored_at=now, analyse_text=analyse_text,
                           partition=message.partition, offset=message.offset)
    except (ValueError, ValidationError) as exc:
        return DeadLetter(message, DeadLetterReason.scoring_failed, str(exc))


def _validation_dead_letter(message: RawMessage, exc: ValidationError) -> DeadLetter:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return DeadLetter(message, DeadLetterReason.not_json, errors[0]["msg"])
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors)
    return DeadLetter(message, DeadLetterReason.invalid_event, detail)
