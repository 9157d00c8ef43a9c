"""The state topic: an ordered background writer (callers never wait for Kafka) and the
reader that replays it at start-up (latest record per key)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pydantic import BaseModel

from services.alerts.cases.log import TopicReader
from services.alerts.state.records import StateRecord, decode, encode

log = logging.getLogger("ksp.alerts.state")

Send = Callable[..., Awaitable[Any]]


class StateLog:
    """Writes state records in the order they were put, one at a time, retrying with backoff
    (a record is never skipped: a later record of the same key must not be overtaken)."""

    def __init__(self, send: Send, *, backoff_s: float = 0.2, backoff_max_s: float = 10.0) -> None:
        self.send = send
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.failures = 0
        self._queue: deque[tuple[bytes, bytes | None]] = deque()
        self._task: asyncio.Task[None] | None = None

    def put(self, key: str, record: BaseModel | None) -> None:
        """Queue `record` (None: a tombstone) for `key`; needs a running loop."""
        self._queue.append((key.encode(), encode(record)))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="alerts-state-log")

    def __len__(self) -> int:
        return len(self._queue)

    async def _drain(self) -> None:
        delay = self.backoff_s
        while self._queue:
            sent = list(self._queue)
            written = await self._write_in_order(sent)
            for _ in range(written):
                self._queue.popleft()
            if written < len(sent):
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
            else:
                delay = self.backoff_s

    async def _write_in_order(self, records: list[tuple[bytes, bytes | None]]) -> int:
        """Send the records pipelined; how many, from the first, the broker acknowledged. The
        rest go again in order (a record acknowledged after a failed one is written twice,
        which a compacted topic read for the latest record per key absorbs)."""
        acknowledgements: list[Awaitable[Any]] = []
        failure: BaseException | None = None
        for key, value in records:
            try:
                acknowledgements.append(await self.send(key=key, value=value))
            except Exception as exc:  # noqa: BLE001 -- kept and retried, in order
                failure = exc
                break
        results = await asyncio.gather(*acknowledgements, return_exceptions=True)
        written = next((i for i, r in enumerate(results) if isinstance(r, BaseException)), len(results))
        if written < len(results):
            failure = results[written]  # type: ignore[assignment]
        if failure is not None:
            self.failures += 1
            log.warning("state record %s could not be written (will retry): %r",
                        records[written][0].decode(), failure)
        return written

    async def flush(self, timeout: float) -> bool:
        """Wait (up to `timeout`) until every queued record is written; True when done."""
        if self._task is None or self._task.done():
            return not self._queue
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("%d state records not written at shutdown", len(self._queue))
            return False
        return True


class StateTopicReader(TopicReader[tuple[str, StateRecord | None]]):
    """(key, record or None for a tombstone) per record of the state topic."""

    def decode_record(self, record: Any) -> tuple[str, StateRecord | None]:
        if record.key is None:
            raise ValueError("state record without a key")
        return record.key.decode(), decode(record.value)


def latest(records: Iterable[tuple[str, StateRecord | None]]) -> list[StateRecord]:
    """The state a replay describes: the last record per key, without the tombstoned keys."""
    state: dict[str, StateRecord | None] = {}
    for key, record in records:
        state[key] = record
    return [r for r in state.values() if r is not None]
