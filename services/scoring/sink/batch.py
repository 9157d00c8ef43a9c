"""A batch of rows bounded by size and age, with the offset ranges it covers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Batch:
    max_rows: int
    max_age_s: float
    started_at: float | None = None
    rows: dict[str, list[Any]] = field(default_factory=dict)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    messages: int = 0

    def add(self, event_id: str | None, row: list[Any] | None, partition: int, offset: int, now: float) -> None:
        """Record a consumed message; `row` None for a message that yields no row."""
        if self.started_at is None:
            self.started_at = now
        self.messages += 1
        low, high = self.offsets.get(partition, (offset, offset))
        self.offsets[partition] = (min(low, offset), max(high, offset))
        if event_id is not None and row is not None:
            self.rows.setdefault(event_id, row)  # the first copy of a repeated event wins

    def ready(self, now: float) -> bool:
        if self.messages == 0:
            return False
        assert self.started_at is not None
        return self.messages >= self.max_rows or now - self.started_at >= self.max_age_s

    def dedup_token(self, topic: str) -> str:
        """Names the offset ranges, so a retry of this very batch is recognised by ClickHouse."""
        ranges = ",".join(f"{p}:{lo}-{hi}" for p, (lo, hi) in sorted(self.offsets.items()))
        return f"{topic}/{ranges}"

    def commit_offsets(self) -> dict[int, int]:
        """Next offset to consume per partition, once this batch is stored."""
        return {partition: high + 1 for partition, (_, high) in self.offsets.items()}

    def clear(self) -> None:
        self.started_at = None
        self.rows = {}
        self.offsets = {}
        self.messages = 0
