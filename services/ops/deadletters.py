"""Dead letters as operators see them: parse a dead-letter message's headers into a record,
select records, format them, and build the message that re-drives one to its source topic.

Pure: no Kafka here (the edge is `deadletter_kafka.py`). The headers are the contract written by
`services/scoring/processing.py` (DeadLetter.headers) and the sink (`ksp-clickhouse-error`)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.scoring.processing import DeadLetterReason

REASONS: tuple[str, ...] = tuple(reason.value for reason in DeadLetterReason)
REDRIVEN_FROM = "ksp-redriven-from"
# Headers the pipeline adds when it dead-letters or re-drives a message: not the original's.
_ADDED_HEADERS = frozenset({"ksp-source-topic", "ksp-source-partition", "ksp-source-offset",
                            "ksp-clickhouse-error", REDRIVEN_FROM})
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class UnknownReason(ValueError):
    """A --reason that no part of the pipeline writes."""


class DeadLetterRecord(BaseModel):
    """One message of the dead-letter topic, with its headers parsed."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    reason: str
    detail: str = ""
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    clickhouse_error: str | None = None

    @property
    def location(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def source(self) -> str:
        return f"{self.source_topic or '?'}/{_or_unknown(self.source_partition)}/{_or_unknown(self.source_offset)}"

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The message's own headers: without the ones the pipeline added."""
        return [(k, v) for k, v in self.headers if not k.startswith("ksp-error-") and k not in _ADDED_HEADERS]


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else str(value)


def from_message(*, topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
                 value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> DeadLetterRecord:
    """Parse one consumed dead-letter message (headers as Kafka clients return them)."""
    pairs = tuple((name, raw or b"") for name, raw in headers)
    text = {name: raw.decode("utf-8", "replace") for name, raw in pairs}
    return DeadLetterRecord(
        topic=topic, partition=partition, offset=offset, key=key, value=value or b"", headers=pairs,
        timestamp=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
        reason=text.get("ksp-error-reason") or "unknown", detail=text.get("ksp-error-detail", ""),
        source_topic=text.get("ksp-source-topic") or None, source_partition=_int(text.get("ksp-source-partition")),
        source_offset=_int(text.get("ksp-source-offset")), clickhouse_error=text.get("ksp-clickhouse-error"),
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def validate_reasons(reasons: Iterable[str]) -> frozenset[str]:
    """The chosen reasons; an unknown one is an error naming the valid choices."""
    chosen = frozenset(r.strip() for r in reasons if r.strip())
    if unknown := sorted(chosen - set(REASONS)):
        raise UnknownReason(f"unknown reason(s): {', '.join(unknown)}; choose from {', '.join(REASONS)}")
    return chosen


def parse_since(text: str, *, now: datetime) -> datetime:
    """An ISO date (midnight UTC), an ISO datetime (UTC unless zoned), or an age such as 90m, 6h, 7d."""
    text = text.strip()
    if match := _RELATIVE.match(text):
        return now - timedelta(**{_UNITS[match[2]]: float(match[1])})
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO date, datetime or age (90m, 6h, 7d): {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on: no reasons means every reason."""

    reasons: frozenset[str] = frozenset()
    since: datetime | None = None

    def matches(self, record: DeadLetterRecord) -> bool:
        if self.reasons and record.reason not in self.reasons:
            return False
        return self.since is None or record.timestamp >= self.since


@dataclass(frozen=True)
class RedriveMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def redrive_message(record: DeadLetterRecord, to_topic: str | None = None) -> RedriveMessage | None:
    """The original message (same key, so the same partition; same value; its own headers) for
    its source topic or `to_topic`, naming the dead letter it comes from; None without a target."""
    target = to_topic or record.source_topic
    if not target:
        return None
    headers = [*record.original_headers(), (REDRIVEN_FROM, record.location.encode())]
    return RedriveMessage(topic=target, key=record.key, value=record.value, headers=headers)


def format_line(record: DeadLetterRecord, *, detail_width: int = 100) -> str:
    """One aligned line: time, reason, source topic/partition/offset, key, detail (truncated)."""
    when = record.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    key = "-" if record.key is None else record.key.decode("utf-8", "replace")
    detail = " ".join(record.detail.split())
    if record.clickhouse_error:
        detail = f"[{record.clickhouse_error}] {detail}"
    if len(detail) > detail_width:
        detail = detail[: detail_width - 1] + "…"
    return f"{when}  {record.reason:<18}  {record.source}  key={key}  {detail}"


def to_json(record: DeadLetterRecord) -> dict[str, Any]:
    """A JSON-ready view; the value as text, or base64 when it is not UTF-8 (not_utf8 letters)."""
    try:
        value: dict[str, Any] = {"value": record.value.decode("utf-8")}
    except UnicodeDecodeError:
        value = {"value": None, "value_base64": base64.b64encode(record.value).decode()}
    return {
        "time": record.timestamp.isoformat(), "reason": record.reason, "detail": record.detail,
        "clickhouse_error": record.clickhouse_error, "source_topic": record.source_topic,
        "source_partition": record.source_partition, "source_offset": record.source_offset,
        "key": None if record.key is None else record.key.decode("utf-8", "replace"),
        "deadletter": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        "headers": {name: raw.decode("utf-8", "replace") for name, raw in record.original_headers()},
        **value,
    }


def format_counts(counts: Mapping[str, int], noun: str = "dead letter(s)") -> str:
    """'3 dead letter(s): clickhouse_refused 2, not_json 1' (most frequent first)."""
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    parts = ", ".join(f"{reason} {n}" for reason, n in ranked)
    return f"{total} {noun}" + (f": {parts}" if parts else "")
