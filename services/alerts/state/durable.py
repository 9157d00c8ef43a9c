"""What makes the alerts runtime survive a restart: each change of a delivery, a silence or a
notification group is written to the state topic (in the background, in order), and at start
the state replayed from it is handed back to the outbox, the Notifier and the evaluator.

Restored at start (see docs/reliability.md, "Alerts state across restarts"):

* deliveries of this worker: parked ones are listed and replayable again, pending ones resume
  with the same idempotency key (delivered ones are tombstoned and never re-sent);
* silences (every worker's): active and scheduled ones, not the expired or deleted; after the
  start the topic is followed, so a silence created on another worker applies here too;
* this worker's notification groups: what each receiver was told (firing alerts, sequence,
  last send), so a resolution is notified once and a firing alert is not notified again as
  new (a repeat follows `repeat_interval` from the last send before the restart);
* the evaluator's firing alerts, from the cases this worker opened whose condition has not
  cleared (the cases topic already holds them), so they resolve when the condition clears.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.alert import Alert, AlertStatus
from schemas.cases import Silence
from services.alerts.cases.store import CaseStore
from services.alerts.delivery.outbox import DELIVERED, Delivery
from services.alerts.state.log import StateLog
from services.alerts.state.records import (
    DeliveryRecord,
    GroupRecord,
    SilenceRecord,
    StateRecord,
    delivery_key,
    group_key,
    silence_key,
)


class StateWriter:
    """Turns runtime changes into state records; does nothing without a state log (tests and
    tools that run the runtime without Kafka)."""

    def __init__(self, log: StateLog | None, worker_id: str) -> None:
        self.log = log
        self.worker_id = worker_id

    def delivery(self, delivery: Delivery) -> None:
        if self.log is not None:
            record = None if delivery.state == DELIVERED else DeliveryRecord.of(delivery, self.worker_id)
            self.log.put(delivery_key(delivery.delivery_id), record)

    def silence(self, silence_id: str, silence: Silence | None) -> None:
        if self.log is not None:
            self.log.put(silence_key(silence_id), None if silence is None else SilenceRecord(silence=silence))

    def notifier(self, notifier: Any) -> None:
        """The groups that changed and the silences that expired since the last call."""
        groups, expired = notifier.take_changes()
        if self.log is None:
            return
        for key, snapshot in groups.items():
            record = None if snapshot is None else GroupRecord(worker_id=self.worker_id, group=snapshot)
            self.log.put(group_key(self.worker_id, key), record)
        for silence_id in expired:
            self.log.put(silence_key(silence_id), None)

    async def flush(self, timeout: float) -> bool:
        return True if self.log is None else await self.log.flush(timeout)


@dataclass(frozen=True)
class Restored:
    silences: int
    groups: int
    firing: int
    parked: int
    resumed: int


def firing_alerts(cases: CaseStore, worker_id: str) -> list[Alert]:
    """Alerts this worker raised whose condition had not cleared: the cases remember them."""
    return [c.alert for c in cases.cases.values()
            if not c.condition_cleared and c.alert.status is AlertStatus.firing and cases.owned(c, worker_id)]


def restore(runtime: Any, records: Iterable[StateRecord], now: datetime) -> Restored:
    """Hand the replayed state back to the runtime's parts (call with the loop running, after
    the cases are rebuilt and before the agent handles events)."""
    worker = runtime.settings.worker_id
    records = list(records)
    silences = [r.silence for r in records if isinstance(r, SilenceRecord) and r.silence.ends_at > now]
    for silence in silences:
        runtime.notifier.add_silence(silence)
    groups = runtime.notifier.restore([r.group for r in records
                                       if isinstance(r, GroupRecord) and r.worker_id == worker])
    firing = runtime.evaluator.restore_firing(firing_alerts(runtime.cases, worker), now)
    deliveries = [r.delivery() for r in records if isinstance(r, DeliveryRecord) and r.worker_id == worker]
    resumed = runtime.outbox.restore(deliveries)
    return Restored(silences=len(silences), groups=len(groups), firing=firing,
                    parked=len(deliveries) - resumed, resumed=resumed)


def apply_remote(runtime: Any, key: str, record: StateRecord | None, now: datetime) -> None:
    """A state record read while following the topic: silences any worker creates or deletes
    (this worker's own come back too; applying them again changes nothing). Deliveries and
    groups belong to their worker and are only read at start."""
    if not key.startswith("silence/"):
        return
    if record is None:
        runtime.notifier.remove_silence(key.removeprefix("silence/"))
    elif isinstance(record, SilenceRecord) and record.silence.ends_at > now:
        runtime.notifier.add_silence(record.silence)

