"""Scale-out of detection: the scored topic re-keyed by what detector state is keyed by.

The scored topic is keyed by event id, so with several alerts workers in one group each would
see a thinned, different share of every scope and customer (slower drop detection, missed
"repeated negative experiences", the same drop alerted by two workers). As in Kafka Streams'
repartitioning, a thin first agent re-publishes every scored event, value unchanged, to
internal topics keyed by state key:

* ``<group>.by-scope``: once per scope level some drop or surge rule uses, keyed by the level
  and the event's label values there (``["touchpoint,unit", "web", "berlin"]`` as JSON);
* ``<group>.by-customer``: once, keyed by the customer id (``event:<id>`` for an anonymous
  event that states an intent to leave, which is all churn detection does without a customer);
* ``<group>.notify`` (one partition): every alert state change, so exactly one worker at a
  time groups, inhibits and notifies, seeing every worker's alerts (a unit's drop inhibits
  that unit's customer alerts even when another worker raised them).

The detecting agents consume these, so each scope's and each customer's state lives on the
worker that owns its key's partition; per-key order is the scored topic's partition order.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from schemas.alert import Alert
from schemas.scored import ScoredEvent
from services.alerts.metrics import AlertsMetrics
from services.alerts.packing import pack
from services.common.delivery import Output, deliver
from services.common.partitioner import partition_for

log = logging.getLogger("ksp.alerts")

#: Label values of a scored event, in the order of ``rules.models.SCOPE_LABELS``.
_LABEL_INDEX = {"touchpoint": 0, "unit": 1, "segment": 2, "source": 3}

Send = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class InternalTopics:
    """Names of the repartition topics: derived from the consumer group, like Faust's
    internal topics, so two deployments on one cluster never share them."""

    by_scope: str
    by_customer: str
    notify: str

    @classmethod
    def of(cls, group: str) -> InternalTopics:
        return cls(f"{group}.by-scope", f"{group}.by-customer", f"{group}.notify")


def scope_key(level: tuple[str, ...], scored: ScoredEvent) -> bytes:
    """The partition key of the event's scope at ``level`` (the level is part of it, so the
    worker knows which level a record is for and equal values of two levels do not collide)."""
    ev = scored.event
    vals = (ev.touchpoint.value, ev.unit, ev.segment, ev.source)
    return level_key(level, [vals[_LABEL_INDEX[n]] for n in level])


def level_key(level: tuple[str, ...], values: Sequence[str]) -> bytes:
    """The partition key of the scope with these label values at ``level``."""
    return json.dumps([",".join(level), *values], separators=(",", ":"), ensure_ascii=False).encode()


def level_of(key: bytes) -> tuple[str, ...]:
    """The scope level a ``by-scope`` record is for (inverse of :func:`scope_key`'s first part)."""
    names = json.loads(key)[0]
    return tuple(names.split(",")) if names else ()


def customer_key(scored: ScoredEvent) -> bytes | None:
    """The partition key of the event's customer; None when churn detection cannot use it."""
    if scored.event.customer_id:
        return scored.event.customer_id.encode()
    if scored.churn_intent:
        return f"event:{scored.event_id}".encode()
    return None


def routes(scored: ScoredEvent, levels: Sequence[tuple[str, ...]]) -> list[tuple[str, bytes]]:
    """Where one scored event goes: (``scope`` | ``customer``, key) pairs. Customers are routed
    even without churn rules: the closed loop follows up their churn cases."""
    out = [("scope", scope_key(level, scored)) for level in levels]
    if (key := customer_key(scored)) is not None:
        out.append(("customer", key))
    return out


class NotifyRecord(BaseModel):
    """An alert state change on its way to the one notifying worker."""

    alert: Alert
    accepted_at: datetime | None = Field(
        None, description="When the triggering event was accepted (detection-latency metric).")


ACK_WARN_S = 30.0


class Repartitioner:
    """The first agent's work: scored events -> repartition topics. Returns only once the
    broker acknowledged every message (resending what it failed, `deliver`), so the scored
    offsets are committed only once the records are safely on the repartition topics."""

    def __init__(self, levels: Callable[[], list[tuple[str, ...]]], send: dict[str, Send],
                 metrics: AlertsMetrics, partitions: dict[str, int]) -> None:
        self.levels = levels
        self.send = send
        self.metrics = metrics
        self.partitions = partitions  # route -> partition count of its topic

    async def forward(self, values: Sequence[bytes]) -> None:
        """Route the batch's events, then send one packed message per route and partition."""
        levels = self.levels()  # per batch: a rules reload may change the levels
        groups: dict[tuple[str, int], list[tuple[bytes, bytes]]] = defaultdict(list)
        for value in values:
            scored = self._parse(value)
            if scored is None:
                continue
            for route, key in routes(scored, levels):
                groups[route, partition_for(key, self.partitions[route])].append((key, value))
        outputs = [Output(partial(self.send[route], partition=partition), None, pack(records))
                   for (route, partition), records in groups.items()]
        await deliver(outputs, warn_after_s=ACK_WARN_S)
        for (route, _), records in groups.items():
            self.metrics.repartitioned.labels(route).inc(len(records))

    def _parse(self, value: bytes) -> ScoredEvent | None:
        self.metrics.events.inc()
        try:
            return ScoredEvent.model_validate_json(value)
        except ValidationError as exc:
            self.metrics.unreadable.inc()
            log.error("unreadable scored event skipped: %s", exc)
            return None
