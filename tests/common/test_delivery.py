"""A batch is done only when the broker acknowledged all its outputs: a slow acknowledgement is
named in the log while the agent keeps waiting, and an output the broker failed is sent again
(with backoff) instead of failing the batch — Faust would acknowledge the raw messages anyway."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from services.common.delivery import Backoff, Output, acknowledged, deliver

FAST = Backoff(first_s=0.01, max_s=0.04)


class FlakyBroker:
    """A `Send` whose delivery futures fail the first `failures` times for each listed key."""

    def __init__(self, failures: dict[bytes, int], raise_on_send: bool = False) -> None:
        self.failures = dict(failures)
        self.raise_on_send = raise_on_send
        self.acknowledged: list[bytes] = []
        self.attempts: dict[bytes, int] = {}

    async def send(self, *, key: bytes | None, value: bytes, headers: Any = None) -> asyncio.Future[Any]:
        assert key is not None
        self.attempts[key] = self.attempts.get(key, 0) + 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failures.get(key, 0) > 0:
            self.failures[key] -= 1
            if self.raise_on_send:
                raise ConnectionError("producer not ready")
            future.set_exception(ConnectionError("request timed out"))
        else:
            self.acknowledged.append(key)
            future.set_result(None)
        return future


def outputs(broker: FlakyBroker, n: int) -> list[Output]:
    return [Output(broker.send, f"k{i}".encode(), b"v") for i in range(n)]


def test_a_missing_acknowledgement_is_reported_and_still_awaited(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        scored, aggregate = loop.create_future(), loop.create_future()
        scored.set_result(None)
        loop.call_later(0.35, aggregate.set_result, None)
        sent = [Output(lambda **_: None, b"e", b""), Output(lambda **_: None, b"a", b"", aggregate=True)]
        results = await acknowledged([scored, aggregate], sent, warn_after_s=0.1)
        assert aggregate.done() and results == [None, None]

    with caplog.at_level(logging.WARNING, logger="ksp.delivery"):
        asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) >= 2  # every 0.1 s until the acknowledgement came
    assert warnings[0] == "after 0.1 s the broker has not acknowledged 1 of 2 outputs (1 of them aggregates)"


@pytest.mark.parametrize("raise_on_send", [False, True], ids=["future fails", "send raises"])
def test_failed_outputs_are_sent_again_until_acknowledged(raise_on_send: bool) -> None:
    broker = FlakyBroker({b"k1": 3, b"k4": 1}, raise_on_send=raise_on_send)
    resent: list[int] = []
    asyncio.run(deliver(outputs(broker, 6), warn_after_s=1.0, backoff=FAST, on_resend=resent.append))
    assert sorted(broker.acknowledged) == [f"k{i}".encode() for i in range(6)]  # each exactly once
    assert broker.attempts == {b"k0": 1, b"k1": 4, b"k2": 1, b"k3": 1, b"k4": 2, b"k5": 1}
    assert resent == [2, 1, 1]  # only the failed ones go again


def test_a_healthy_batch_is_sent_once() -> None:
    broker = FlakyBroker({})
    resent: list[int] = []
    asyncio.run(deliver(outputs(broker, 3), warn_after_s=1.0, backoff=FAST, on_resend=resent.append))
    assert broker.attempts == {b"k0": 1, b"k1": 1, b"k2": 1} and resent == []


def test_backoff_doubles_up_to_its_cap() -> None:
    delays = Backoff(first_s=0.5, max_s=3.0).delays()
    assert [next(delays) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
