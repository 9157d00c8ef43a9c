"""The outbox: every notification to every receiver, retried per channel, parked, replayable.

`submit` resolves the notification's receiver name to channels (the configured receiver, or
the fallback receivers when that name is not configured) and starts one delivery per channel
without waiting for it, so the caller (the agent, the tick) is never blocked by a slow
receiver. Each delivery retries with exponential backoff (`backoff_s`, doubled per attempt,
capped at `backoff_max_s`) up to `attempts`; a failure that retrying cannot fix (e.g. HTTP 400)
or the last failed attempt PARKS it: it stays in the outbox, is listed by the API
(GET /v1/deliveries/parked) and can be replayed (POST /v1/deliveries/parked/{id}/replay).
Every attempt and every replay sends the same idempotency key. Nothing is dropped silently: a
receiver name nobody configured parks too.

Durability: `on_change` sees every delivery whose state changed (submitted, failed attempt,
parked, replayed, delivered) so the caller can persist it; `restore` takes back the deliveries
persisted before a restart: parked ones are listed and replayable again, pending ones resume
(same idempotency key, fresh attempt budget).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.alerts.delivery.base import Channel, DeliveryError, status_of

log = logging.getLogger("ksp.alerts.outbox")

PENDING, DELIVERED, PARKED = "pending", "delivered", "parked"


@dataclass
class Delivery:
    delivery_id: str
    receiver: str  # the notification's receiver name
    channel: str  # the channel (receiver) it goes through
    notification: Any
    created_at: datetime
    accepted_at: datetime | None = None
    state: str = PENDING
    attempts: int = 0
    replays: int = 0
    last_error: str | None = None
    updated_at: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        return str(self.notification.idempotency_key)

    def to_json(self) -> dict[str, Any]:
        n = self.notification
        alerts = list(n.alerts)
        return {
            "delivery_id": self.delivery_id, "receiver": self.receiver, "channel": self.channel,
            "state": self.state, "attempts": self.attempts, "replays": self.replays,
            "error": self.last_error, "idempotency_key": self.idempotency_key,
            "group_key": n.group_key, "status": status_of(n),
            "alert_ids": [a.alert_id for a in alerts],
            "alert_id": alerts[0].alert_id if alerts else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": (self.updated_at or self.created_at).isoformat(),
            "history": self.history[-20:],
        }


class Outbox:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        fallback: list[str] | None = None,
        attempts: int = 6,
        backoff_s: float = 0.5,
        backoff_max_s: float = 60.0,
        timeout_s: float = 10.0,
        attempts_by_channel: Mapping[str, int] | None = None,
        on_result: Callable[[Delivery, str], None] | None = None,
        on_change: Callable[[Delivery], None] | None = None,
        keep_delivered: int = 1000,
    ) -> None:
        self.channels: dict[str, Channel] = dict(channels)
        self.fallback = list(fallback or [])
        self.attempts = attempts
        self.attempts_by_channel = dict(attempts_by_channel or {})
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.on_result = on_result
        self.on_change = on_change
        self.keep_delivered = keep_delivered
        self.deliveries: dict[str, Delivery] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivered_order: list[str] = []

    # -- routing -------------------------------------------------------------------------
    def routes(self, receiver: str) -> list[str]:
        if receiver in self.channels:
            return [receiver]
        return [name for name in self.fallback if name in self.channels]

    def submit(self, notification: Any, accepted_at: datetime | None = None) -> list[Delivery]:
        """Start delivering `notification`; returns at once with one delivery per channel."""
        now = datetime.now(UTC)
        receiver = str(notification.receiver)
        created = []
        names = self.routes(receiver) or [receiver]
        for name in names:
            delivery = Delivery(uuid.uuid4().hex, receiver, name, notification, now, accepted_at)
            self.deliveries[delivery.delivery_id] = delivery
            created.append(delivery)
            if name not in self.channels:
                self._park(delivery, f"no receiver named {receiver!r} is configured")
                continue
            self._changed(delivery)
            self._start(delivery)
        return created

    def restore(self, deliveries: list[Delivery]) -> int:
        """Take back deliveries persisted before a restart (needs a running loop): parked ones
        stay parked, pending ones start again with a fresh attempt budget; returns how many
        were resumed. Delivered ones are not expected (they are not persisted)."""
        resumed = 0
        for delivery in deliveries:
            if delivery.delivery_id in self.deliveries or delivery.state == DELIVERED:
                continue
            self.deliveries[delivery.delivery_id] = delivery
            if delivery.state == PENDING:
                delivery.attempts = 0
                delivery.history.append({"at": datetime.now(UTC).isoformat(), "event": "resumed"})
                self._start(delivery)
                resumed += 1
        return resumed

    # -- handover (another worker may become the notifier, see handover.py) -------------
    async def pause(self) -> None:
        """Stop delivering, keep every delivery as it is: pending ones are on the state topic
        as pending, so whoever notifies next resumes them (same idempotency key)."""
        await self.close()

    def resume(self) -> int:
        """Deliver the pending deliveries again after a `pause` (this worker still notifies)."""
        pending = self.pending()
        for delivery in pending:
            delivery.attempts = 0
            self._start(delivery)
        return len(pending)

    def release(self) -> int:
        """Forget every delivery after a `pause`: another worker took them over from the
        state topic. Nothing is persisted (the records stay theirs to change)."""
        released = len(self.deliveries)
        self.deliveries.clear()
        self._delivered_order.clear()
        return released

    # -- state ---------------------------------------------------------------------------
    def parked(self) -> list[Delivery]:
        return sorted((d for d in self.deliveries.values() if d.state == PARKED), key=lambda d: d.created_at)

    def pending(self) -> list[Delivery]:
        return [d for d in self.deliveries.values() if d.state == PENDING]

    def replay(self, delivery_id: str) -> Delivery:
        """Deliver a parked delivery again (same idempotency key, fresh attempt budget).
        KeyError if unknown; ValueError if it is not parked."""
        delivery = self.deliveries[delivery_id]
        if delivery.state != PARKED:
            raise ValueError(f"delivery {delivery_id} is {delivery.state}, not parked")
        if delivery.channel not in self.channels:
            routes = self.routes(delivery.receiver)
            if not routes:
                raise ValueError(f"no receiver named {delivery.receiver!r} is configured")
            delivery.channel = routes[0]
        delivery.replays += 1
        delivery.attempts = 0
        delivery.state = PENDING
        delivery.updated_at = datetime.now(UTC)
        delivery.history.append({"at": delivery.updated_at.isoformat(), "event": "replay"})
        self._changed(delivery)
        self._start(delivery)
        return delivery

    def update_channels(self, channels: Mapping[str, Channel], fallback: list[str] | None = None) -> None:
        self.channels = dict(channels)
        if fallback is not None:
            self.fallback = list(fallback)

    async def drain(self, timeout: float) -> bool:
        """Wait (up to `timeout`) for the deliveries in flight; True when none is left."""
        if not self._tasks:
            return True
        _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- delivering ----------------------------------------------------------------------
    def _start(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._run(delivery), name=f"deliver-{delivery.delivery_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _budget(self, channel: str) -> int:
        return self.attempts_by_channel.get(channel, self.attempts)

    async def _run(self, delivery: Delivery) -> None:
        budget = self._budget(delivery.channel)
        delay = self.backoff_s
        while True:
            channel = self.channels.get(delivery.channel)
            if channel is None:
                self._park(delivery, f"receiver {delivery.channel!r} is no longer configured")
                return
            delivery.attempts += 1
            started = time.monotonic()
            try:
                await asyncio.wait_for(channel.send(delivery.notification), timeout=self.timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- every failure is recorded, none escapes
                if isinstance(exc, DeliveryError):
                    reason, retryable = exc.reason, exc.retryable
                elif isinstance(exc, TimeoutError):
                    reason, retryable = f"{delivery.channel}: timed out after {self.timeout_s:g} s", True
                else:
                    reason, retryable = f"{delivery.channel}: {exc!r}", True
                delivery.last_error = reason
                delivery.updated_at = datetime.now(UTC)
                delivery.history.append({"at": delivery.updated_at.isoformat(), "event": "failed",
                                         "attempt": delivery.attempts, "error": reason})
                log.warning("delivery %s via %s attempt %d/%d failed: %s", delivery.delivery_id,
                            delivery.channel, delivery.attempts, budget, reason)
                self._report(delivery, "failed")
                if retryable and delivery.attempts < budget:
                    self._changed(delivery)
                if not retryable or delivery.attempts >= budget:
                    self._park(delivery, reason)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delivery.state = DELIVERED
            delivery.last_error = None
            delivery.updated_at = datetime.now(UTC)
            delivery.history.append({"at": delivery.updated_at.isoformat(), "event": "delivered",
                                     "attempt": delivery.attempts,
                                     "seconds": round(time.monotonic() - started, 4)})
            self._report(delivery, "delivered")
            self._changed(delivery)
            self._forget_old(delivery)
            return

    def _park(self, delivery: Delivery, reason: str) -> None:
        delivery.state = PARKED
        delivery.last_error = reason
        delivery.updated_at = datetime.now(UTC)
        delivery.history.append({"at": delivery.updated_at.isoformat(), "event": "parked", "error": reason})
        log.error("delivery %s of %s via %s PARKED after %d attempt(s): %s", delivery.delivery_id,
                  delivery.idempotency_key, delivery.channel, delivery.attempts, reason)
        self._report(delivery, "parked")
        self._changed(delivery)

    def _changed(self, delivery: Delivery) -> None:
        if self.on_change is not None:
            try:
                self.on_change(delivery)
            except Exception:
                log.exception("delivery change hook failed")

    def _report(self, delivery: Delivery, outcome: str) -> None:
        if self.on_result is not None:
            try:
                self.on_result(delivery, outcome)
            except Exception:
                log.exception("delivery result hook failed")

    def _forget_old(self, delivery: Delivery) -> None:
        self._delivered_order.append(delivery.delivery_id)
        while len(self._delivered_order) > self.keep_delivered:
            old = self._delivered_order.pop(0)
            if self.deliveries.get(old) is not None and self.deliveries[old].state == DELIVERED:
                del self.deliveries[old]
