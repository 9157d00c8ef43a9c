"""The alerts runtime: pure parts wired to their side effects.

    scored batch ─> AlertEvaluator.on_scored ─> alert changes ─┬─> alerts topic, ClickHouse `alerts`
                                                              ├─> Notifier.receive
                                                              └─> case events (open / condition cleared)
    tick ─> on_tick, RulesWatcher.poll (hot reload), Notifier.due ─> Outbox (never awaited), SLA check
            (due notifications and SLA escalation on the notifier only, see handover.py)
    API  ─> lifecycle commands, silences, parked deliveries

Every case event is applied in memory, published to the cases topic (the event log), the case
written to the cases table (cases/table.py, where every worker reads it) and the event to
ClickHouse `alert_events`; subscribers of the event stream (GET /v1/stream) see it too. The
agent never waits for a delivery or for ClickHouse, but each step (a batch, a tick, a command)
ends only once the broker acknowledged the alert, notify and case records it published (resent
until then, never dropped silently) and the table records are sent (each confirmed by reading
it back from the table's changelog, written again if it does not come back).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.alert import Alert, AlertStatus
from schemas.cases import Case, CaseCommand, CaseEvent, Silence
from schemas.scored import ScoredEvent
from services.alerts.cases.log import HistoryWriter
from services.alerts.cases.model import decide
from services.alerts.cases.store import CaseStore
from services.alerts.delivery.outbox import Delivery, Outbox
from services.alerts.metrics import AlertsMetrics
from services.alerts.notify.escalation import escalation_notification
from services.alerts.repartition import NotifyRecord, level_of
from services.alerts.settings import AlertsSettings
from services.alerts.state.durable import Restored, StateWriter, restore
from services.alerts.state.log import StateLog
from services.alerts.state.parked import ParkedView
from services.alerts.state.records import StateRecord
from services.common.delivery import Output, deliver

log = logging.getLogger("ksp.alerts")


class NotTheNotifier(Exception):
    """A request only the notifying worker can serve (it owns the deliveries)."""

    def __init__(self, delivery_id: str, notifier: str | None) -> None:
        super().__init__(f"delivery {delivery_id} belongs to the notifying worker "
                         f"({notifier or 'unknown'}); send the request to it")
        self.notifier = notifier


Publish = Callable[..., Awaitable[Any]]  # send(key=, value=) -> the broker's acknowledgement


class CaseReplica(Protocol):
    """Where the cases are kept for every worker (cases/table.py: a Faust table)."""

    def put(self, case: Case) -> None: ...

    def delete(self, case_id: str) -> None: ...

    async def flush(self) -> None: ...

    def rewrite_unconfirmed(self, current: Callable[[str], Case | None]) -> int: ...

    def unconfirmed(self) -> int: ...

ACK_WARN_S = 30.0
CASE_SWEEP_INTERVAL_S = 600.0  # cases are kept for days: a sweep every 10 minutes is plenty


class Every:
    """Due at most once per `interval_s` of event-loop time (housekeeping inside the tick)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = 0.0  # loop time when it was last due

    def due(self) -> bool:
        now = asyncio.get_running_loop().time()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True


def utcnow() -> datetime:
    return datetime.now(UTC)


class Hub:
    """Fan-out of live events to GET /v1/stream subscribers (bounded; slow readers lose the oldest)."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.subscribers: set[asyncio.Queue[tuple[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[tuple[str, Any]]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(self.size)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        self.subscribers.discard(queue)

    def publish(self, kind: str, data: Any) -> None:
        for queue in list(self.subscribers):
            if queue.full():
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    pass
            queue.put_nowait((kind, data))


def case_summary(case: Case) -> dict[str, Any]:
    """A case without its history (lists, the event stream)."""
    data = case.model_dump(mode="json", exclude={"history"})
    data["events"] = len(case.history)
    return data


class AlertsRuntime:
    def __init__(
        self,
        settings: AlertsSettings,
        *,
        evaluator: Any,
        notifier: Any,
        outbox: Outbox,
        metrics: AlertsMetrics,
        publish_alert: Publish,
        publish_case: Publish,
        cases: CaseStore | None = None,
        history: HistoryWriter | None = None,
        watcher: Any = None,
        hub: Hub | None = None,
        clock: Callable[[], datetime] = utcnow,
        publish_notify: Publish | None = None,
        state_log: StateLog | None = None,
        table: CaseReplica | None = None,
    ) -> None:
        self.settings = settings
        self.table = table  # None: the cases live in this process only (tests, backtests)
        # Set with several workers: alerts go through the one-partition notify topic to the
        # one worker that groups and inhibits them all (repartition.py); unset: notified here.
        self.publish_notify = publish_notify
        # Whether this worker notifies (groups, deliveries, digests, escalations): always without
        # a notify topic, else while it owns the notify partition (handover.py switches it).
        self.notifying = publish_notify is None
        self.notify_ready = asyncio.Event()  # set once the notifier's state is loaded here
        if self.notifying:
            self.notify_ready.set()
        # Which firing alerts' conditions this worker detects (handover.py: those whose scope
        # or customer is on its partitions); without repartitioning every one.
        self.detects: Callable[[Alert], bool] = lambda _alert: True
        # Which scopes' detector state this worker keeps (level names, label values), likewise.
        self.holds_scope: Callable[[tuple[str, ...], tuple[str, ...]], bool] = lambda _names, _key: True
        self.holds_customer: Callable[[str], bool] = lambda _customer_id: True  # likewise, customers
        # Cleared while the detector state of gained partitions is loaded (handover.py): their
        # events wait for it, so a scope never starts learning afresh next to its snapshot.
        self.detectors_ready = asyncio.Event()
        self.detectors_ready.set()
        self.evaluator = evaluator
        self.notifier = notifier
        self.outbox = outbox
        self.metrics = metrics
        self.publish_alert = publish_alert
        self.publish_case = publish_case
        self.cases = cases or CaseStore()
        self.history = history
        self.watcher = watcher
        self.hub = hub or Hub()
        self.clock = clock
        self.started = asyncio.Event()
        self.accepted_at: dict[str, datetime] = {}  # alert id -> accepted_at of the triggering event
        self._lock = asyncio.Lock()
        self._outputs: list[Output] = []  # this step's records, acknowledged before it ends
        self._rules_poll = Every(settings.rules_poll_s)
        self._snapshot_every = Every(settings.detector_snapshot_interval_s)
        self._case_sweep = Every(CASE_SWEEP_INTERVAL_S)
        outbox.on_result = self._on_delivery
        # deliveries, silences and notification groups survive a restart (state/durable.py)
        self.state = StateWriter(state_log, settings.worker_id)
        self.parked_view = ParkedView()  # what the notifier parked, as the state topic tells
        outbox.on_change = self.state.delivery

    # -- agent ---------------------------------------------------------------------------
    async def handle(self, values: Sequence[bytes]) -> None:
        """One batch of scored events from the agent."""
        await self.started.wait()
        async with self._lock:
            for value in values:
                self.metrics.events.inc()
                try:
                    scored = ScoredEvent.model_validate_json(value)
                except ValidationError as exc:
                    self.metrics.unreadable.inc()
                    log.error("unreadable scored event skipped: %s", exc)
                    continue
                now = self.clock()
                for event in self.cases.on_feedback(scored, now, self.settings.worker_id):
                    await self._record(event)
                alerts = self.evaluator.on_scored(scored, now)
                if alerts:
                    await self._on_alerts(alerts, now, scored)
            self._dispatch(self.clock())
            await self._acknowledged()

    async def handle_scopes(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """One batch from the by-scope repartition topic: (key, scored event) records, each
        evaluated at the scope level its key names only."""
        await self.started.wait()
        await self.detectors_ready.wait()
        parsed: dict[bytes, ScoredEvent | None] = {}  # an event comes once per scope level
        async with self._lock:
            for key, value in records:
                if value not in parsed:
                    parsed[value] = self._parse(value)
                if (scored := parsed[value]) is not None:
                    now = self.clock()
                    alerts = self.evaluator.on_scope(scored, level_of(key), now)
                    if alerts:
                        await self._on_alerts(alerts, now, scored)
            self._dispatch(self.clock())
            await self._acknowledged()

    async def handle_customers(self, values: Sequence[bytes]) -> None:
        """One batch from the by-customer repartition topic: churn detection and the closed
        loop. This worker alone sees the customer's feedback now, so it follows up the
        customer's cases whoever opened them (owner None)."""
        await self.started.wait()
        await self.detectors_ready.wait()
        async with self._lock:
            for value in values:
                if (scored := self._parse(value)) is not None:
                    now = self.clock()
                    for event in self.cases.on_feedback(scored, now, None):
                        await self._record(event)
                    alerts = self.evaluator.on_customer(scored, now)
                    if alerts:
                        await self._on_alerts(alerts, now, scored)
            self._dispatch(self.clock())
            await self._acknowledged()

    async def handle_notify(self, values: Sequence[bytes]) -> None:
        """One batch from the notify topic (this worker owns its only partition)."""
        await self.started.wait()
        await self.notify_ready.wait()  # the groups the previous notifier left, first
        async with self._lock:
            now = self.clock()
            for value in values:
                try:
                    record = NotifyRecord.model_validate_json(value)
                except ValidationError as exc:
                    log.error("unreadable notify record skipped: %s", exc)
                    continue
                if record.accepted_at is not None:
                    self.accepted_at[record.alert.alert_id] = record.accepted_at
                self.notifier.receive(record.alert, now)
            self._dispatch(self.clock())

    def _parse(self, value: bytes) -> ScoredEvent | None:
        try:
            return ScoredEvent.model_validate_json(value)
        except ValidationError as exc:  # the repartitioner validated it: a bug or a foreign producer
            self.metrics.unreadable.inc()
            log.error("unreadable repartitioned event skipped: %s", exc)
            return None

    async def _notify(self, alert: Alert, now: datetime, accepted_at: datetime | None) -> None:
        if self.publish_notify is None:
            self.notifier.receive(alert, now)
            return
        record = NotifyRecord(alert=alert, accepted_at=accepted_at)
        self._publish(self.publish_notify, alert.fingerprint.encode(), record.model_dump_json().encode())

    def _publish(self, send: Publish, key: bytes, value: bytes) -> None:
        self._outputs.append(Output(send, key, value))

    async def _acknowledged(self) -> None:
        """Return once the broker acknowledged every record this step published (resending what
        it failed): an alert, its notify record or a case event is never dropped silently, and
        the step's input is acknowledged only after its outputs are safe (hold the lock)."""
        outputs, self._outputs = self._outputs, []
        if outputs:
            await deliver(outputs, warn_after_s=ACK_WARN_S)
        if self.table is not None:
            await self.table.flush()

    # -- tick ----------------------------------------------------------------------------
    async def tick(self) -> None:
        """Time-based evaluation, rules hot reload, due notifications, SLA escalation."""
        async with self._lock:
            now = self.clock()
            self._maybe_reload(now)
            alerts = self.evaluator.on_tick(now)
            if alerts:
                await self._on_alerts(alerts, now)
            self._dispatch(now)
            self._snapshot_if_due()
            self._forget_cases_if_due(now)
            if self.table is not None:
                self.metrics.case_rewrites.inc(self.table.rewrite_unconfirmed(self.cases.cases.get))
                self.metrics.case_writes_unconfirmed.set(self.table.unconfirmed())
            if self.notifying:  # one worker escalates: the notifier
                for event in self.cases.overdue(now):
                    self._escalate(event)
                    await self._record(event)
            await self._acknowledged()
            self.metrics.firing.set(len(self.evaluator.firing()))
            self.metrics.pending.set(len(self.outbox.pending()))
            for state, n in self.cases.counts().items():
                self.metrics.cases.labels(state).set(n)

    def _snapshot_if_due(self) -> None:
        if self.settings.detector_snapshot_interval_s > 0 and self._snapshot_every.due():  # 0: only at a stop
            self.snapshot_detectors(buffered=False)

    def _forget_cases_if_due(self, now: datetime) -> None:
        if self._case_sweep.due():
            self.forget_cases(now)

    def forget_cases(self, now: datetime) -> int:
        """Drop the cases that are over and older than the retention from memory (each worker
        decides alike from the same cases, so no coordination is needed)."""
        forgotten = self.cases.evict_closed(now - timedelta(days=self.settings.case_retention_days))
        self.metrics.cases_forgotten.inc(len(forgotten))
        if self.table is not None:
            for case_id in forgotten:
                self.table.delete(case_id)
        return len(forgotten)

    def snapshot_detectors(self, *, buffered: bool) -> int:
        """Queue the detector state that changed (drop baselines, surge windows, churn histories)
        for the state topic, and tombstones for what was forgotten (hold the lock); `buffered`:
        also the scopes with observations not yet run (a stop, a revocation)."""
        n = self.state.detectors(self.evaluator.snapshots(self.settings.worker_id, buffered=buffered))
        self.metrics.detector_snapshots.inc(n)
        self.state.forget(self.evaluator.forgotten_snapshots())
        return n

    def _maybe_reload(self, now: datetime) -> None:
        if self.watcher is None or not self._rules_poll.due():
            return
        try:
            rules = self.watcher.poll()
        except Exception:
            log.exception("rules file could not be reloaded; the previous rules stay in force")
            return
        if rules is None:
            return
        self.evaluator.reload(rules)
        self.notifier.update_routing(rules.routing)
        self.metrics.rules_reloads.inc()
        log.info("rules reloaded from %s", self.settings.rules_path)

    async def flush(self, timeout: float) -> None:
        """Graceful shutdown: hand over what is due, wait for deliveries in flight, write history."""
        try:
            async with self._lock:
                self._dispatch(self.clock())
                self.snapshot_detectors(buffered=True)
        except Exception:
            log.exception("final dispatch or detector snapshot failed")
        if not await self.outbox.drain(timeout):
            log.warning("%d deliveries still in flight at shutdown", len(self.outbox.pending()))
        await self.state.flush(timeout)  # those still pending resume after the restart
        if self.history is not None:
            await self.history.flush()

    def restore(self, records: Sequence[StateRecord]) -> Restored:
        """Take back the state replayed from the state topic (after the cases are rebuilt,
        before `started` is set)."""
        restored = restore(self, records, self.clock())
        self.metrics.parked.set(len(self.outbox.parked()))
        self.metrics.detector_restores.inc(restored.detectors + restored.histories)
        return restored

    def _escalate(self, event: CaseEvent) -> None:
        """An SLA breach (`event` is about to be recorded) goes to the escalation receiver.
        Handed to the outbox before the event is recorded: a crash in between re-sends after
        the restart with the same idempotency key rather than losing the notification."""
        case = self.cases.get(event.case_id)
        notification = escalation_notification(self.evaluator.rules.routing, case, event)
        if notification is None:
            log.info("case %s breached its SLA; no escalation receiver matches it", case.case_id)
            return
        self.metrics.notifications.labels(notification.receiver, "escalation").inc()
        self.outbox.submit(notification)

    # -- alerts and cases ----------------------------------------------------------------
    async def _on_alerts(self, alerts: Sequence[Alert], now: datetime, scored: ScoredEvent | None = None) -> None:
        for alert in alerts:
            self._publish(self.publish_alert, alert.fingerprint.encode(), alert.model_dump_json().encode())
            self.metrics.alerts.labels(alert.kind.value, alert.severity.value, alert.status.value).inc()
            if alert.status is AlertStatus.firing:
                self.metrics.fired.labels(alert.rule, alert.severity.value).inc()
                if scored is not None:
                    self.accepted_at[alert.alert_id] = scored.accepted_at
            else:
                self.metrics.resolved.labels(alert.rule, alert.severity.value).inc()
            if self.history is not None:
                self.history.alert(alert, now)
            firing_at = scored.accepted_at if scored is not None and alert.status is AlertStatus.firing else None
            await self._notify(alert, now, firing_at)
            evidence: dict[str, float | str] = {"worker_id": self.settings.worker_id}
            if scored is not None and alert.status is AlertStatus.firing:
                evidence["trigger_event_id"] = scored.event_id
                if scored.nps is not None:
                    evidence["evidence_nps"] = float(scored.nps)
                if scored.sqi is not None:
                    evidence["evidence_sqi"] = float(scored.sqi)
            for event in self.cases.on_alert(alert, now, self.settings.sla_s, evidence,
                                             self.active_silences(now)):
                await self._record(event)
            self.hub.publish("alert", alert.model_dump(mode="json"))

    async def _record(self, event: CaseEvent) -> Case | None:
        case = self.cases.apply(event)
        if case is None:
            return None
        self.metrics.case_events.labels(event.action.value).inc()
        if event.action.value == "escalated":
            self.metrics.escalations.labels(case.alert.severity.value).inc()
        self._publish(self.publish_case, event.case_id.encode(), event.model_dump_json().encode())
        if self.table is not None:
            self.table.put(case)
        if self.history is not None:
            self.history.case_event(event, case)
        self.hub.publish("case", {"action": event.action.value, "sequence": event.sequence,
                                  "case": case_summary(case)})
        return case

    def adopt(self, case: Case) -> Case | None:
        """A case as the cases table holds it: our own write coming back (skipped as known) or
        another worker's change (taken, so every worker's API shows every case)."""
        known = self.cases.cases.get(case.case_id)
        if known is not None and len(known.history) == len(case.history) and known != case:
            log.warning("case %s#%d was changed by two workers at once: the table's later version "
                        "is kept", case.case_id, len(case.history) - 1)
        adopted = self.cases.adopt(case)
        if adopted is not None and len(adopted.history) > len(known.history if known else ()):
            last = adopted.history[-1]
            self.hub.publish("case", {"action": last.action.value, "sequence": last.sequence,
                                      "case": case_summary(adopted)})
        return adopted

    def gone(self, case_id: str) -> None:
        """A case another worker forgot (deleted from the table)."""
        self.cases.forget(case_id)

    def _dispatch(self, now: datetime) -> None:
        if not self.notifying:
            return
        for notification in self.notifier.due(now):
            accepted = [self.accepted_at[a.alert_id] for a in notification.alerts if a.alert_id in self.accepted_at]
            status = getattr(notification.status, "value", notification.status)
            self.metrics.notifications.labels(notification.receiver, str(status)).inc()
            self.outbox.submit(notification, accepted_at=min(accepted) if accepted and status == "firing" else None)
        self.state.notifier(self.notifier)  # after the submits: a crash in between re-sends, same key
        if len(self.accepted_at) > 100_000:
            for key in list(self.accepted_at)[:50_000]:
                del self.accepted_at[key]

    def _on_delivery(self, delivery: Delivery, outcome: str) -> None:
        self.metrics.deliveries.labels(delivery.channel, outcome).inc()
        self.metrics.parked.set(len(self.outbox.parked()))
        if outcome == "delivered" and delivery.accepted_at is not None and delivery.replays == 0:
            self.metrics.detection_latency.observe((utcnow() - delivery.accepted_at).total_seconds())
            delivery.accepted_at = None  # once per delivery
        self.hub.publish("delivery", {k: v for k, v in delivery.to_json().items() if k != "history"})

    # -- API -----------------------------------------------------------------------------
    async def command(self, case_id: str, name: str, command: CaseCommand) -> Case:
        async with self._lock:
            case = self.cases.get(case_id)
            event = decide(case, name, command, self.clock())
            updated = await self._record(event)
            await self._acknowledged()
            return updated or self.cases.get(case_id)

    def active_silences(self, now: datetime | None = None) -> list[Silence]:
        now = now or self.clock()
        return [s for s in self.notifier.silences() if s.ends_at > now]

    def add_silence(self, matchers: dict[str, str], *, created_by: str, comment: str = "",
                    starts_at: datetime | None = None, ends_at: datetime | None = None,
                    duration_s: float | None = None) -> Silence:
        now = self.clock()
        starts = starts_at or now
        ends = ends_at or starts + timedelta(seconds=duration_s or 3600)
        if ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        silence = Silence(silence_id=uuid.uuid4().hex, matchers=matchers, starts_at=starts, ends_at=ends,
                          created_by=created_by, comment=comment)
        self.notifier.add_silence(silence)
        self.state.silence(silence.silence_id, silence)
        self.hub.publish("silence", {"action": "created", "silence": silence.model_dump(mode="json")})
        return silence

    def remove_silence(self, silence_id: str) -> bool:
        if not any(s.silence_id == silence_id for s in self.notifier.silences()):
            return False
        self.notifier.remove_silence(silence_id)
        self.state.silence(silence_id, None)
        self.hub.publish("silence", {"action": "deleted", "silence_id": silence_id})
        return True

    def parked(self) -> list[Delivery]:
        """Parked deliveries: the outbox's on the notifier, the state topic's view elsewhere."""
        return self.outbox.parked() if self.notifying else self.parked_view.deliveries()

    def replay(self, delivery_id: str) -> Delivery:
        """Send a parked delivery again (the notifier only: NotTheNotifier elsewhere)."""
        if not self.notifying:
            raise NotTheNotifier(delivery_id, self.parked_view.parked_by(delivery_id))
        delivery = self.outbox.replay(delivery_id)
        self.metrics.parked.set(len(self.outbox.parked()))
        return delivery
