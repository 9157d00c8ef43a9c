"""What moves between alerts workers on a rebalance: the notifier, and detector state.

* **The notifier** is the worker that owns the notify topic's one partition. Only it groups,
  notifies (due groups, digests, deliveries pending or parked) and escalates SLA breaches.
  When the partition is assigned to a worker that did not have it, the worker replays the
  state topic (groups and deliveries, whoever wrote them) before it handles a notify record;
  a worker that lost it forgets them and stops sending. Faust's eager rebalance revokes every
  partition first: the notifier then pauses (deliveries stop, state records flushed, so the
  next notifier reads them) and resumes if the partition comes back to it.
* **Detector state** lives with the by-scope/by-customer partition of its key. On a
  revocation a worker writes the drop detectors' state of its scopes to the state topic (and
  waits for it, like the notifier's records); it forgets the scopes and customers of partitions
  it lost (evaluator.evict). For the by-scope and by-customer partitions it gained it replays
  the state topic and gives those scopes their learned baselines and those customers their
  churn histories back (their events wait for it), then takes over the firing alerts of the
  gained partitions from the cases (evaluator.restore_firing), so the condition resolves once
  and is not alerted again. Theme-surge windows move like drop baselines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from faust.types import TP

from schemas.alert import Alert, AlertKind
from services.alerts.repartition import InternalTopics, level_key
from services.alerts.rules.models import SCOPE_LABELS
from services.alerts.state.durable import firing_alerts, restore_detectors, take_over
from services.alerts.state.records import StateRecord
from services.common.partitioner import partition_for

log = logging.getLogger("ksp.alerts.handover")

#: How long a revocation waits for queued state records (it holds up the group's rebalance).
REVOKE_FLUSH_S = 3.0

Load = Callable[[], Awaitable[list[StateRecord]]]


def alert_route(alert: Alert, levels: Iterable[tuple[str, ...]]) -> tuple[str, bytes] | None:
    """(``scope`` | ``customer``, repartition key) of the state that raised `alert`."""
    labels = alert.labels
    if alert.kind is AlertKind.churn_risk:
        cid = labels.get("customer_id")
        return ("customer", cid.encode()) if cid else None
    present = {k for k in SCOPE_LABELS if k in labels}
    names = next((n for n in levels if set(n) == present), None)
    return None if names is None else ("scope", level_key(names, [labels[n] for n in names]))


class Handover:
    """Follows the group's assignment (Faust's rebalance signals) for one runtime."""

    def __init__(self, runtime: Any, topics: InternalTopics, partitions: dict[str, int], load: Load) -> None:
        self.runtime = runtime
        self.notify_tp = TP(topics.notify, 0)
        self.topic_of = {"scope": topics.by_scope, "customer": topics.by_customer}
        self.partitions = partitions  # route -> partition count of its topic
        self.load = load
        self.owned: dict[str, set[int]] = {"scope": set(), "customer": set()}
        self.notifier = False  # the notify partition is in this worker's latest assignment
        self._loading: asyncio.Task[None] | None = None
        self._gaining: dict[str, set[int]] = {"scope": set(), "customer": set()}  # not yet loaded
        self._detectors: asyncio.Task[None] | None = None
        runtime.detects = self.detects
        runtime.holds_scope = lambda names, key: self.holds("scope", level_key(names, key))
        runtime.holds_customer = lambda customer_id: self.holds("customer", customer_id.encode())

    # -- which keys are here ------------------------------------------------------------
    def holds(self, route: str, key: bytes, among: set[int] | None = None) -> bool:
        """Whether `key`'s partition of `route` is owned here (or is one of `among`)."""
        return partition_for(key, self.partitions[route]) in (self.owned[route] if among is None else among)

    def detects(self, alert: Alert) -> bool:
        route = alert_route(alert, self.runtime.evaluator.scope_levels())
        return route is not None and self.holds(*route)

    # -- Faust signals ------------------------------------------------------------------
    async def on_revoked(self, revoked: set[TP]) -> None:
        rt = self.runtime
        snapshots = 0
        if rt.started.is_set() and any(tp.topic in self.topic_of.values() for tp in revoked):
            async with rt._lock:  # the next owner of a scope or customer reads where its detector stands
                snapshots = rt.snapshot_detectors(buffered=True)
        if self.notify_tp in revoked and rt.notifying:
            await self._pause()  # flushes the state records
        elif snapshots:
            await rt.state.flush(REVOKE_FLUSH_S)

    async def on_assigned(self, assigned: set[TP]) -> None:
        await self._move_detectors(assigned)
        if self.notify_tp in assigned:
            if self.notifier and not self.runtime.notifying and self._loading is None:
                self._resume()
            elif not self.notifier:
                self.notifier = True
                self._loading = asyncio.get_running_loop().create_task(self._take_over(), name="notify-takeover")
        elif self.notifier:
            self.notifier = False
            await self._release()

    # -- notifier -----------------------------------------------------------------------
    async def _pause(self) -> None:
        rt = self.runtime
        async with rt._lock:  # not in the middle of a tick's dispatch or escalation
            rt.notifying = False
            rt.notify_ready.clear()
            await rt.outbox.pause()
        await rt.state.flush(REVOKE_FLUSH_S)

    def _resume(self) -> None:
        rt = self.runtime
        rt.notifying = True
        rt.notify_ready.set()
        log.info("still the notifier; %d pending deliveries resumed", rt.outbox.resume())

    async def _release(self) -> None:
        rt = self.runtime
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None
        async with rt._lock:
            rt.notifying = False
            rt.notify_ready.clear()
            await rt.outbox.pause()
            rt.notifier.release()
            log.info("notify partition moved to another worker: %d deliveries released", rt.outbox.release())

    async def _take_over(self) -> None:
        rt = self.runtime
        await rt.started.wait()
        try:
            records = await self.load()
        except Exception:
            log.exception("the state topic could not be read: notifying without the previous groups")
            records = []
        async with rt._lock:
            taken = take_over(rt, records)
            rt.metrics.parked.set(len(rt.outbox.parked()))
            rt.notifying = True
            rt.notify_ready.set()
        self._loading = None
        log.info("this worker notifies now: %s", taken)

    # -- detectors ----------------------------------------------------------------------
    async def _move_detectors(self, assigned: set[TP]) -> None:
        now = {route: {tp.partition for tp in assigned if tp.topic == topic}
               for route, topic in self.topic_of.items()}
        gained = {route: now[route] - self.owned[route] for route in now}
        lost = any(self.owned[route] - now[route] for route in now)
        self.owned = now
        rt = self.runtime
        if not rt.started.is_set():
            return  # the start-up restore takes the firing alerts of what is owned then
        self._gaining = {route: (self._gaining[route] | gained[route]) & now[route] for route in now}
        async with rt._lock:
            if lost:
                evicted = rt.evaluator.evict(rt.holds_scope, rt.holds_customer)
                log.info("rebalance: state of %d scopes/customers left with their partitions", evicted)
            if not any(self._gaining.values()):
                return
        # the state topic is replayed in the background (not holding up the group); the
        # gained scopes' events wait for it
        if self._detectors is not None:
            self._detectors.cancel()  # its partitions are in _gaining still
        rt.detectors_ready.clear()
        self._detectors = asyncio.get_running_loop().create_task(self._take_detectors(),
                                                                 name="detector-takeover")

    async def _take_detectors(self) -> None:
        rt = self.runtime
        try:
            records = await self.load()
        except Exception:
            log.exception("the state topic could not be read: gained scopes learn their baselines again")
            records = []
        async with rt._lock:
            scopes, customers = self._gaining["scope"], self._gaining["customer"]
            restored, histories = restore_detectors(
                rt.evaluator, records, lambda names, key: self.holds("scope", level_key(names, key), scopes),
                lambda cid: self.holds("customer", cid.encode(), customers), rt.clock())
            rt.metrics.detector_restores.inc(restored + histories)
            log.info("rebalance: learned state of %d scopes and churn histories of %d customers taken over "
                     "with their partitions", restored, histories)
            self._take_firing()
        self._detectors = None
        rt.detectors_ready.set()

    def _take_firing(self) -> None:
        """The firing alerts of the partitions gained (hold the runtime's lock)."""
        gained, self._gaining = self._gaining, {"scope": set(), "customer": set()}
        if any(gained.values()):
            rt = self.runtime
            alerts = firing_alerts(rt.cases, lambda a: self._gained(a, gained))
            taken = rt.evaluator.restore_firing(alerts, rt.clock())
            log.info("rebalance: %d firing alerts taken over with their partitions", taken)

    def _gained(self, alert: Alert, gained: dict[str, set[int]]) -> bool:
        route = alert_route(alert, self.runtime.evaluator.scope_levels())
        return route is not None and self.holds(*route, gained[route[0]])
