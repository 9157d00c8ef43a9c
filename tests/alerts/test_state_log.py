"""The state topic writer: records reach the broker in the order they were put, each one
acknowledged; a failed record and those after it go again in order, so the latest record of a
key is always the last one written for it."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from services.alerts.state.log import StateLog


class Note(BaseModel):
    n: int


class FlakyTopic:
    """A send whose acknowledgement fails once for each listed (key, n)."""

    def __init__(self, fail_once: set[tuple[bytes, int]], raise_on_send: set[tuple[bytes, int]] = frozenset()) -> None:  # type: ignore[assignment]
        self.fail_once = set(fail_once)
        self.raise_on_send = set(raise_on_send)
        self.written: list[tuple[bytes, int]] = []

    async def send(self, *, key: bytes, value: bytes | None) -> asyncio.Future[Any]:
        record = (key, Note.model_validate_json(value or b"{}").n)
        if record in self.raise_on_send:
            self.raise_on_send.discard(record)
            raise ConnectionError("producer not ready")
        acknowledgement: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if record in self.fail_once:
            self.fail_once.discard(record)
            acknowledgement.set_exception(ConnectionError("request timed out"))
        else:
            self.written.append(record)
            acknowledgement.set_result(None)
        return acknowledgement


def write(topic: FlakyTopic, records: list[tuple[str, int]]) -> StateLog:
    async def scenario() -> StateLog:
        state_log = StateLog(topic.send, backoff_s=0.01, backoff_max_s=0.02)
        for key, n in records:
            state_log.put(key, Note(n=n))
        assert await state_log.flush(5)
        return state_log

    return asyncio.run(scenario())


RECORDS = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]


def test_a_healthy_topic_gets_every_record_once_in_order() -> None:
    topic = FlakyTopic(set())
    state_log = write(topic, RECORDS)
    assert topic.written == [(k.encode(), n) for k, n in RECORDS]
    assert state_log.failures == 0 and len(state_log) == 0


def test_a_failed_record_and_the_ones_after_it_are_written_again_in_order() -> None:
    topic = FlakyTopic({(b"a", 3)}, raise_on_send={(b"b", 5)})
    state_log = write(topic, RECORDS)
    assert state_log.failures == 1 and len(state_log) == 0  # one round failed, the next wrote the rest
    assert topic.written[:3] == [(b"a", 1), (b"b", 2), (b"c", 4)]  # c 4 got through behind the failed a 3
    last_per_key = {key: n for key, n in topic.written}  # what compaction keeps
    assert last_per_key == {b"a": 3, b"b": 5, b"c": 4}
    assert topic.written[-3:] == [(b"a", 3), (b"c", 4), (b"b", 5)]  # the resend, in order
