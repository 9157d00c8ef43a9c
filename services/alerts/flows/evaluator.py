"""The evaluator: scored events in, alert state changes out (see the package doc). Owns the
shared state and routes each event to the per-kind flows (drops, surges, churn_risk)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from schemas.alert import Alert
from schemas.scored import ScoredEvent, SentimentLabel
from services.alerts.detectors import surge
from services.alerts.flows import ownership, snapshots
from services.alerts.flows.churn_risk import on_churn, resolve_quiet
from services.alerts.flows.drops import flush_drop, new_drop_scope, resolve_cleared
from services.alerts.flows.evidence import resolved
from services.alerts.flows.reload import carry_over, compile_rules
from services.alerts.flows.state import Ledger, Runtime
from services.alerts.flows.surges import close_due_windows, flush_surge, new_surge_scope
from services.alerts.flows.sweep import Runtimes, Sweeper
from services.alerts.rules import RuleSet
from services.alerts.state.detectors import ChurnSnapshot, DropSnapshot, SurgeSnapshot

DetectorSnapshot = DropSnapshot | SurgeSnapshot | ChurnSnapshot

#: Default observations buffered per scope before the detector runs (see the package doc).
BATCH_SIZE = 32
#: A tick runs buffered observations through the detectors once the oldest waited this long.
MAX_DELAY = timedelta(seconds=30)


class AlertEvaluator:
    """Applies a :class:`RuleSet` to scored events; returns alerts whose status changed."""

    def __init__(self, rules: RuleSet, *, batch_size: int = BATCH_SIZE,
                 max_delay: timedelta = MAX_DELAY) -> None:
        self.batch_size = max(1, batch_size)
        self.max_delay = max_delay
        self._book = Ledger()
        self._firing = self._book.firing  # the one dict, shared with the flows
        self._pending: list[Alert] = []  # emitted by the next on_tick (flushed during a reload)
        self._retiring: list[tuple[Alert, str]] = []  # resolved by the next on_tick (reload)
        self._sweeper = Sweeper(lambda: self._runtimes, self._book.forgotten)
        self._build(rules, previous=None)

    # ---------------------------------------------------------------- public API

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def firing(self) -> list[Alert]:
        return list(self._firing.values())

    def on_scored(self, scored: ScoredEvent, now: datetime) -> list[Alert]:
        """Every rule at every scope level and for the customer (one worker sees all events)."""
        out: list[Alert] = []
        self._on_scopes(scored, now, None, out)
        if self._churn:
            on_churn(self._book, self._churn, scored, now, out)
        return out

    def on_scope(self, scored: ScoredEvent, level: tuple[str, ...], now: datetime) -> list[Alert]:
        """Drop and surge rules at one scope level only: with several workers, the event reaches
        each level's worker through a repartition topic keyed by that level's scope."""
        out: list[Alert] = []
        self._on_scopes(scored, now, level, out)
        return out

    def on_customer(self, scored: ScoredEvent, now: datetime) -> list[Alert]:
        """Churn rules only (the worker that owns the customer's partition)."""
        out: list[Alert] = []
        if self._churn:
            on_churn(self._book, self._churn, scored, now, out)
        return out

    def scope_levels(self) -> list[tuple[str, ...]]:
        """The scope levels some drop or surge rule keeps state at (what to repartition by)."""
        used = {names for rt in (*self._drop, *self._surge) for names in rt.levels}
        return [names for names in self._levels if names in used]

    def on_tick(self, now: datetime) -> list[Alert]:
        """Emit what waits (reload), run buffers older than ``max_delay``, close windows and
        resolve conditions that cleared by time, and sweep a slice of idle state."""
        out: list[Alert] = list(self._pending)
        self._pending.clear()
        self._resolve_retiring(now, out)
        self._flush_buffers(now, now - self.max_delay, out)
        for rt2 in self._surge:
            close_due_windows(self._book, rt2, now, out)
        for rt in self._drop:
            resolve_cleared(self._book, rt, now, out)
        for rt3 in self._churn:
            resolve_quiet(self._book, rt3, now, out)
        self._sweeper.step(now)
        return out

    def flush(self, now: datetime) -> list[Alert]:
        """Run every buffered observation through its detector now (a tick does this for
        buffers older than ``max_delay``); for tests, backtests and shutdown."""
        out: list[Alert] = []
        self._flush_buffers(now, None, out)
        return out

    def reload(self, rules: RuleSet) -> None:
        """Apply new rules; detector state (and firing alerts) stay where the rule still exists
        with the same kind (and metric) and the scope is still evaluated. Alerts of removed or
        disabled rules/scopes are resolved by the next :meth:`on_tick`."""
        previous = {rt.name: rt for rt in self._all()}
        # buffered data belongs to the old configuration: run it through first
        out: list[Alert] = []
        for rt, scope, since in list(self._book.dirty_drop.values()):
            if scope.buf:  # `now` of the buffered data's arrival: the latest time we know
                flush_drop(self._book, rt, scope, max(since, scope.last_at or since), out)
        for rt2, sscope, since in list(self._book.dirty_surge.values()):
            if sscope.buf:
                flush_surge(self._book, rt2, sscope, None, max(since, sscope.last_at or since), out)
        self._book.dirty_drop.clear()
        self._book.dirty_surge.clear()
        self._pending.extend(out)
        self._build(rules, previous=previous)

    def restore_firing(self, alerts: Iterable[Alert], now: datetime) -> int:
        """Alerts that were firing before a restart (the service takes them from the cases):
        they are firing again here, so their condition is not alerted as new and resolves
        once when it clears (see :mod:`.ownership`). Returns how many were taken."""
        return ownership.restore_firing(self._book, self._all(), alerts, now)

    def evict(self, keep_scope: Callable[[tuple[str, ...], tuple[str, ...]], bool],
              keep_customer: Callable[[str], bool]) -> int:
        """Forget the scopes (level names, label values) and customers this evaluator no longer
        sees the events of (a rebalance gave their partitions to another worker): detector
        state, buffered observations and firing alerts, emitting nothing. The new owner takes
        the firing alerts over from the cases (restore_firing); were they kept here, a later
        rebalance back would bring stale state that alerts the same condition again."""
        return ownership.evict(self._book, [*self._drop, *self._surge], self._churn,
                               keep_scope, keep_customer)

    def snapshots(self, worker_id: str, *, buffered: bool = False) -> list[DetectorSnapshot]:
        """Detector state that changed since the last call, as records for the state topic:
        drop detectors' and surge windows (with `buffered`, also of scopes holding observations
        not yet run) and customers' churn histories."""
        out: list[DetectorSnapshot] = list(snapshots.take(self._book, self._drop, worker_id, buffered=buffered))
        out += snapshots.take_surge(self._book, self._surge, worker_id, buffered=buffered)
        return out + snapshots.take_churn(self._book, self._churn, worker_id)

    def restore_churn(self, records: Iterable[ChurnSnapshot], keep_customer: Callable[[str], bool]) -> int:
        """Churn histories of the customers `keep_customer` accepts (before :meth:`restore_firing`,
        which then finds their customer); returns how many."""
        return snapshots.restore_churn(self._churn, records, keep_customer)

    def forgotten_snapshots(self) -> list[str]:
        """Keys of detector records (drop, surge, churn) to tombstone since the last call:
        scopes and customers evicted as idle, and records found stale at a restore."""
        keys = list(self._book.forgotten)
        self._book.forgotten.clear()
        return keys

    def restore_snapshots(self, records: Iterable[DropSnapshot | SurgeSnapshot],
                          keep_scope: Callable[[tuple[str, ...], tuple[str, ...]], bool],
                          now: datetime) -> int:
        """Learned drop-detector state of the scopes `keep_scope` accepts (before
        :meth:`restore_firing`), drop detectors' and surge windows; scopes with live state keep it.
        Returns how many."""
        records = list(records)
        drops = [r for r in records if isinstance(r, DropSnapshot)]
        surges = [r for r in records if isinstance(r, SurgeSnapshot)]
        return (snapshots.restore(self._book, self._drop, drops, keep_scope, now)
                + snapshots.restore_surge(self._book, self._surge, surges, keep_scope, now))

    def stats(self) -> dict[str, int]:
        """Sizes of the kept state (for metrics and tests)."""
        return {
            "drop_scopes": sum(len(rt.scopes) for rt in self._drop),
            "surge_scopes": sum(len(rt.scopes) for rt in self._surge),
            "customers": sum(len(rt.customers) for rt in self._churn),
            "firing": len(self._firing),
        }

    # ---------------------------------------------------------------- per event (hot path)

    def _on_scopes(self, scored: ScoredEvent, now: datetime, only: tuple[str, ...] | None,
                   out: list[Alert]) -> None:
        # the label values and each level's key are computed once per event, and only if needed
        vals = None
        if self._drop:
            vals = self._on_drop_scopes(scored, now, only, out)
        text = scored.text
        if self._surge and text is not None and (
            text.sentiment_label is SentimentLabel.negative or scored.complaint
        ):
            self._on_surge_scopes(scored, now, only, vals, out)

    def _event_values(self, scored: ScoredEvent) -> tuple[str, ...]:
        ev = scored.event
        keys = self._key_slots
        for i in range(len(keys)):
            keys[i] = None
        return (ev.touchpoint.value, ev.unit, ev.segment, ev.source)

    def _scopes(self, rt: Any, only: tuple[str, ...] | None, vals: tuple[str, ...],
                now: datetime, create: Callable[..., Any]) -> Iterator[Any]:
        """The rule's scope state for this event at each level (`only`: that level alone),
        created on first sight; each level's key is computed once per event."""
        keys = self._key_slots
        for li, names, table in rt.level_slots:
            if only is not None and names != only:
                continue
            key = keys[li]
            if key is None:
                key = keys[li] = self._level_getters[li](vals)
            scope = table.get(key)
            yield scope if scope is not None else create(rt, names, key, now)

    def _on_drop_scopes(self, scored: ScoredEvent, now: datetime, only: tuple[str, ...] | None,
                        out: list[Alert]) -> tuple[str, ...] | None:
        """Append the event's value to each drop rule's scopes (the detector runs per batch)."""
        ev = scored.event
        vals = None
        batch_size = self.batch_size
        dirty = self._book.dirty_drop
        obs_at = ev.occurred_at
        eid = ev.event_id or ""
        for rt in self._drop:
            v = rt.value(scored)
            if v is None:
                continue
            if vals is None:
                vals = self._event_values(scored)
            obs = (eid, obs_at, v)
            for scope in self._scopes(rt, only, vals, now, new_drop_scope):
                if not scope.enabled:
                    continue
                buf = scope.buf
                buf.append(obs)
                n = len(buf)
                if scope.hot or n >= batch_size:  # hot: an alarm may be near, no waiting
                    flush_drop(self._book, rt, scope, now, out)
                elif n == 1:
                    dirty[id(scope)] = (rt, scope, now)
        return vals

    def _on_surge_scopes(self, scored: ScoredEvent, now: datetime, only: tuple[str, ...] | None,
                         vals: tuple[str, ...] | None, out: list[Alert]) -> None:
        """Append a negative comment to each surge rule's scopes."""
        ev = scored.event
        text = scored.text
        assert text is not None
        if vals is None:
            vals = self._event_values(scored)
        obs = surge.CommentObservation(ev.event_id or "", ev.occurred_at, True,
                                       tuple(text.negative_themes))
        for rt in self._surge:
            for scope in self._scopes(rt, only, vals, now, new_surge_scope):
                if not scope.eff.enabled:
                    continue
                scope.buf.append(obs)
                if len(scope.buf) >= self.batch_size:
                    flush_surge(self._book, rt, scope, None, now, out)
                elif len(scope.buf) == 1:
                    self._book.dirty_surge[id(scope)] = (rt, scope, now)

    # ---------------------------------------------------------------- buffers, reload

    def _flush_buffers(self, now: datetime, older_than: datetime | None, out: list[Alert]) -> None:
        book = self._book
        for key, (rt, scope, since) in list(book.dirty_drop.items()):
            if older_than is None or since <= older_than:
                book.dirty_drop.pop(key, None)
                if scope.buf:
                    flush_drop(book, rt, scope, now, out)
        for key, (rt2, sscope, since) in list(book.dirty_surge.items()):
            if older_than is None or since <= older_than:
                book.dirty_surge.pop(key, None)
                if sscope.buf:
                    flush_surge(book, rt2, sscope, None, now, out)

    def _resolve_retiring(self, now: datetime, out: list[Alert]) -> None:
        for alert, reason in self._retiring:
            if self._firing.get(alert.fingerprint) is alert:
                del self._firing[alert.fingerprint]
                out.append(resolved(alert, now, reason))
        self._retiring.clear()

    def _all(self) -> list[Runtime]:
        return [*self._drop, *self._surge, *self._churn]

    def _build(self, rules: RuleSet, previous: dict[str, Runtime] | None) -> None:
        compiled = compile_rules(rules)
        self._rules = rules
        self._runtimes: Runtimes = compiled.runtimes
        # unpacked: read per event
        self._drop = compiled.runtimes.drop
        self._surge = compiled.runtimes.surge
        self._churn = compiled.runtimes.churn
        self._levels = compiled.levels
        self._level_getters = compiled.getters
        self._key_slots: list[tuple[str, ...] | None] = [None] * len(compiled.levels)
        if previous is not None:
            carry_over(previous, compiled.runtimes, lambda alert, why: self._retiring.append((alert, why)))


def evaluate_all(rules: RuleSet, events: Iterable[ScoredEvent]) -> list[Alert]:
    """Every alert state change for these events (time = event time), ticked at the end."""
    ev = AlertEvaluator(rules)
    out: list[Alert] = []
    last = None
    for s in events:
        now = s.event.occurred_at if last is None else max(last, s.event.occurred_at)
        out += ev.on_scored(s, now)
        last = now
    if last is not None:
        out += ev.flush(last) + ev.on_tick(last)
    return out
