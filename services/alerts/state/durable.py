"""What makes the alerts runtime survive a restart: each change of a delivery, a silence or a
notification group is written to the state topic (in the background, in order), and at start
the state replayed from it is handed back to the outbox, the Notifier and the evaluator.

Restored at start (see docs/reliability.md, "Alerts state across restarts"):

* silences (every worker's): active and scheduled ones, not the expired or deleted; after the
  start the topic is followed, so a silence created on another worker applies here too;
* the drop detectors' learned state (baselines, CUSUM statistics) of the scopes this worker
  detects, and the churn histories (negative experiences in the window, cooldowns) of its
  customers, and the theme-surge windows of its scopes, so detection goes on at once
  (state/detectors.py);
* the evaluator's firing alerts whose condition has not cleared (the cases topic holds them),
  of the scopes and customers this worker detects, so they resolve when the condition clears;
* the notifier's part, by the worker that notifies (the owner of the notify partition, see
  handover.py; it loads it when the partition is assigned to it): notification groups (what
  each receiver was told: firing alerts, sequence, last send), so a resolution is notified
  once and a firing alert is not notified again as new; and the deliveries: parked ones are
  listed and replayable, pending ones resume with the same idempotency key (delivered ones
  are tombstoned and never re-sent); and the digests' marks (the digest time each last
  handled), so a digest that fell due while no worker notified is sent late instead of skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.alert import Alert, AlertStatus
from schemas.cases import CaseAction, Silence
from services.alerts.cases.store import CaseStore
from services.alerts.delivery.outbox import DELIVERED, Delivery
from services.alerts.state.detectors import ChurnSnapshot, DropSnapshot, SurgeSnapshot
from services.alerts.state.log import StateLog
from services.alerts.state.records import (
    DeliveryRecord,
    DigestRecord,
    GroupRecord,
    SilenceRecord,
    StateRecord,
    delivery_key,
    digest_key,
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

    def detectors(self, records: Iterable[DropSnapshot | SurgeSnapshot | ChurnSnapshot]) -> int:
        """Detector snapshots (flows/snapshots.py): drop baselines, surge windows, churn histories;
        returns how many were queued."""
        if self.log is None:
            return 0
        n = 0
        for record in records:
            self.log.put(record.key(), record)
            n += 1
        return n

    def forget(self, keys: Iterable[str]) -> None:
        """Tombstones for records nobody needs any more (compaction then drops them)."""
        if self.log is not None:
            for key in keys:
                self.log.put(key, None)

    def notifier(self, notifier: Any) -> None:
        """The groups that changed, the silences that expired and the digests handled since the
        last call."""
        groups, expired = notifier.take_changes()
        digests = notifier.take_digest_marks()
        if self.log is None:
            return
        for key, snapshot in groups.items():
            record = None if snapshot is None else GroupRecord(worker_id=self.worker_id, group=snapshot)
            self.log.put(group_key(key), record)
        for silence_id in expired:
            self.log.put(silence_key(silence_id), None)
        for name, handled in digests.items():
            self.log.put(digest_key(name), DigestRecord(name=name, handled=handled))

    async def flush(self, timeout: float) -> bool:
        return True if self.log is None else await self.log.flush(timeout)


@dataclass(frozen=True)
class Restored:
    silences: int
    groups: int
    firing: int
    parked: int
    resumed: int
    detectors: int = 0  # drop-detector and theme-surge scopes given their learned state back
    histories: int = 0  # customers given their churn history back


@dataclass(frozen=True)
class TakenOver:
    groups: int
    parked: int
    resumed: int


def firing_alerts(cases: CaseStore, keep: Callable[[Alert], bool]) -> list[Alert]:
    """Alerts whose condition had not cleared (the cases remember them) that `keep` says this
    worker detects (their scope or customer is on its partitions, or it raised them)."""
    return [c.alert for c in cases.cases.values()
            if not c.condition_cleared and c.alert.status is AlertStatus.firing and keep(c.alert)]


def case_alerts(cases: CaseStore) -> list[Alert]:
    """Each case's alert in its latest state: firing, or resolved when its condition cleared
    (the digests' record of the day, rebuilt from the cases topic)."""
    out = []
    for case in cases.cases.values():
        cleared = next((e.at for e in case.history if e.action is CaseAction.condition_cleared), None)
        alert = case.alert
        if cleared is not None and alert.status is AlertStatus.firing:
            alert = alert.model_copy(update={"status": AlertStatus.resolved, "ends_at": cleared})
        out.append(alert)
    return out


def restore_detectors(evaluator: Any, records: Iterable[StateRecord],
                      keep_scope: Callable[[tuple[str, ...], tuple[str, ...]], bool],
                      keep_customer: Callable[[str], bool], now: datetime) -> tuple[int, int]:
    """Learned detector state from the state records: drop baselines and surge windows of the
    scopes `keep_scope` accepts, churn histories of the customers `keep_customer` accepts;
    returns how many scopes and customers got theirs back."""
    records = list(records)
    scopes = evaluator.restore_snapshots(
        [r for r in records if isinstance(r, DropSnapshot | SurgeSnapshot)], keep_scope, now)
    customers = evaluator.restore_churn([r for r in records if isinstance(r, ChurnSnapshot)], keep_customer)
    return scopes, customers


def take_over(runtime: Any, records: Iterable[StateRecord]) -> TakenOver:
    """The notifier's part of the state (groups, pending and parked deliveries), whoever wrote
    it: called when this worker becomes the notifier (at start alone, or on assignment of the
    notify partition). Needs a running loop (pending deliveries resume)."""
    records = list(records)
    groups = runtime.notifier.restore([r.group for r in records if isinstance(r, GroupRecord)])
    runtime.notifier.restore_digests({r.name: r.handled for r in records if isinstance(r, DigestRecord)})
    runtime.notifier.remember_history(case_alerts(runtime.cases), runtime.clock())
    deliveries = [r.delivery() for r in records if isinstance(r, DeliveryRecord)]
    resumed = runtime.outbox.restore(deliveries)
    return TakenOver(groups=len(groups), parked=len(deliveries) - resumed, resumed=resumed)


def restore(runtime: Any, records: Iterable[StateRecord], now: datetime) -> Restored:
    """Hand the replayed state back to the runtime's parts (call with the loop running, after
    the cases are rebuilt and before the agent handles events): silences always, firing alerts
    of what this worker detects, the notifier's part only if it notifies already."""
    records = list(records)
    silences = [r.silence for r in records if isinstance(r, SilenceRecord) and r.silence.ends_at > now]
    for silence in silences:
        runtime.notifier.add_silence(silence)
    # learned detector state first: a firing alert taken over then counts its quiet period on it
    detectors, histories = restore_detectors(runtime.evaluator, records, runtime.holds_scope,
                                             runtime.holds_customer, now)
    firing = runtime.evaluator.restore_firing(firing_alerts(runtime.cases, runtime.detects), now)
    taken = take_over(runtime, records) if runtime.notifying else TakenOver(0, 0, 0)
    return Restored(silences=len(silences), groups=taken.groups, firing=firing,
                    parked=taken.parked, resumed=taken.resumed, detectors=detectors, histories=histories)


def apply_remote(runtime: Any, key: str, record: StateRecord | None, now: datetime) -> None:
    """A state record read while following the topic: silences any worker creates or deletes
    (this worker's own come back too; applying them again changes nothing), and the parked
    deliveries for the read-only view every worker lists (`ParkedView`). Deliveries and groups
    are the notifier's: taken over when a worker becomes the notifier (`take_over`)."""
    runtime.parked_view.apply(key, record)
    if not key.startswith("silence/"):
        return
    if record is None:
        runtime.notifier.remove_silence(key.removeprefix("silence/"))
    elif isinstance(record, SilenceRecord) and record.silence.ends_at > now:
        runtime.notifier.add_silence(record.silence)

