"""A deliberately broken scoring worker, for the chaos suite's negative control.

    python -m tests.chaos.broken_scoring      (same settings and environment as `ksp scoring`)

Its sink forgets what is already stored (`ClickHouseWriter._stored` returns an empty set),
sends no usable insert deduplication token (a fresh one per insert) and never commits its
Kafka offsets. After a SIGKILL and restart it re-consumes the scored topic from the start and
stores every event again: the invariant checker must report the duplicates. Test code only.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from services.scoring.sink import writer
from services.scoring.sink.consumer import ClickHouseSink
from services.scoring.sink.writer import ClickHouseWriter


def _nothing_stored(self: ClickHouseWriter, client: object, event_ids: list[str]) -> set[str]:
    return set()


def _fresh_token(topic: str, rows: object) -> str:
    return f"{topic}/{uuid.uuid4()}"


async def _flush_without_commit(self: ClickHouseSink) -> None:
    import asyncio

    async with self._lock:
        if self.batch.messages == 0:
            return
        started = time.perf_counter()
        result = await asyncio.to_thread(self.writer.write, self.batch.rows, lambda: self._stopping)
        self.metrics.observe_sink_batch(self.batch.messages, result.inserted, time.perf_counter() - started)
        _progress(self.batch.messages)
        self.batch.clear()


_handled = 0


def _progress(messages: int) -> None:
    """Messages this process's sink has flushed, for the test to know it has drained (the
    service's own /metrics cannot be read: see the report on services/scoring/app.py)."""
    global _handled
    _handled += messages
    path = os.environ.get("KSP_CHAOS_PROGRESS")
    if path:
        tmp = Path(path + ".tmp")
        tmp.write_text(str(_handled))
        tmp.replace(path)


def main() -> None:
    ClickHouseWriter._stored = _nothing_stored  # type: ignore[method-assign]
    writer.dedup_token = _fresh_token  # type: ignore[assignment]
    ClickHouseSink.flush = _flush_without_commit  # type: ignore[method-assign]
    from services.cli import app

    app(["scoring"])


if __name__ == "__main__":
    main()
