"""A batch of rows bounded by size and age, with the offset ranges it covers.

It keeps each row's original message too: a row ClickHouse refuses goes to the dead-letter
topic as it was consumed, and so does a message the sink cannot read at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.scoring.processing import DeadLetter, RawMessage


@dataclass
class Batch:
    max_rows: int
    max_age_s: float
    started_at: float | None = None
    rows: dict[str, list[Any]] = field(default_factory=dict)
    sources: dict[str, RawMessage] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    messages: int = 0

    def add(self, message: RawMessage, event_id: str, row: list[Any], now: float) -> None:
        """Record a consumed message and its row; the first copy of a repeated event wins."""
        self._count(message, now)
        if event_id not in self.rows:
            self.rows[event_id] = row
            self.sources[event_id] = message

    def add_dead_letter(self, letter: DeadLetter, now: float) -> None:
        """Record a consumed message that yields no row, but a dead letter."""
        self._count(letter.message, now)
        self.dead_letters.append(letter)

    def _count(self, message: RawMessage, now: float) -> None:
        if self.started_at is None:
            self.started_at = now
        self.messages += 1
        low, high = self.offsets.get(message.partition, (message.offset, message.offset))
        self.offsets[message.partition] = (min(low, message.offset), max(high, message.offset))

    def ready(self, now: float) -> bool:
        if self.messages == 0:
            return False
        assert self.started_at is not None
        return self.messages >= self.max_rows or now - self.started_at >= self.max_age_s

    def commit_offsets(self) -> dict[int, int]:
        """Next offset to consume per partition, once this batch is stored or dead-lettered."""
        return {partition: high + 1 for partition, (_, high) in self.offsets.items()}

    def clear(self) -> None:
        self.started_at = None
        self.rows = {}
        self.sources = {}
        self.dead_letters = []
        self.offsets = {}
        self.messages = 0
