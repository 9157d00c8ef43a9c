"""Isolate the rows ClickHouse refuses by bisecting the batch; store all the others.

With k refused rows among n, this costs at most 1 + 2·k·⌈log2 n⌉ inserts, and a healthy
batch costs one. A transient failure at any step propagates: the caller retries the whole
write, whose "already stored?" check then skips the parts stored before the failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from services.scoring.sink.errors import Refusal, refusal

T = TypeVar("T")


def insert_isolating(
    rows: Sequence[T],
    insert: Callable[[Sequence[T]], None],
    classify: Callable[[BaseException], Refusal | None] = refusal,
) -> list[tuple[T, Refusal]]:
    """Insert `rows` in as few parts as the refusals allow; returns each refused row and why."""
    if not rows:
        return []
    try:
        insert(rows)
        return []
    except Exception as exc:
        refused = classify(exc)
        if refused is None:
            raise
    if len(rows) == 1:
        return [(rows[0], refused)]
    middle = len(rows) // 2
    return insert_isolating(rows[:middle], insert, classify) + insert_isolating(rows[middle:], insert, classify)
