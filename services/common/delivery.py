"""Getting a batch's outputs acknowledged by the broker, whatever it takes.

Faust acknowledges a batch's input messages as soon as the agent moves on (also when the agent
raises), so an output whose send failed must be sent again here, or its input is lost: the
agent waits (back-pressure) and resends what the broker failed, with exponential backoff,
until everything is acknowledged. A resend can duplicate an output whose first send did reach
the broker: consumers must be idempotent (the sink deduplicates scored events by id; the
partial aggregates are documented as at-least-once; the alerts' detectors see a repartitioned
event twice at worst, as after any redelivery).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Send = Callable[..., Awaitable[Any]]
log = logging.getLogger("ksp.delivery")


@dataclass(frozen=True, slots=True)
class Output:
    """One message to publish, kept so that it can be sent again."""

    send: Send
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    aggregate: bool = False


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.5
    max_s: float = 30.0

    def delays(self) -> Any:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


async def deliver(outputs: Sequence[Output], *, warn_after_s: float, backoff: Backoff | None = None,
                  on_resend: Callable[[int], None] | None = None) -> None:
    """Send every output and return once the broker acknowledged each one; never gives up."""
    pending, delays = list(outputs), (backoff or Backoff()).delays()
    while pending:
        futures = [await _send(output) for output in pending]
        results = await acknowledged(futures, pending, warn_after_s)
        failed = [(o, r) for o, r in zip(pending, results, strict=True) if isinstance(r, BaseException)]
        pending = [o for o, _ in failed]
        if failed:
            delay = next(delays)
            log.warning("the broker failed %d of %d outputs (%s); sending them again in %.1f s",
                        len(failed), len(futures), failed[0][1], delay)
            if on_resend:
                on_resend(len(failed))
            await asyncio.sleep(delay)


async def _send(output: Output) -> Awaitable[Any]:
    """The delivery future of one send; a send that raises becomes a failed future."""
    try:
        return await output.send(key=output.key, value=output.value, headers=output.headers)
    except Exception as exc:  # noqa: BLE001 — any failure to hand the message over is retried
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(exc)
        return failed


async def acknowledged(futures: Sequence[Awaitable[Any]], outputs: Sequence[Output],
                       warn_after_s: float) -> list[Any]:
    """Every future's result or exception, warning every `warn_after_s` with what is still open."""
    everything = asyncio.gather(*futures, return_exceptions=True)
    waited = 0.0
    while True:
        try:
            return list(await asyncio.wait_for(asyncio.shield(everything), warn_after_s))
        except TimeoutError:
            waited += warn_after_s
            open_ = [o for o, f in zip(outputs, futures, strict=True) if not (asyncio.isfuture(f) and f.done())]
            log.warning("after %.1f s the broker has not acknowledged %d of %d outputs (%d of them "
                        "aggregates)", waited, len(open_), len(outputs), sum(o.aggregate for o in open_))
