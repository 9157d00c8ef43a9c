"""Detector state in and out of snapshots (state/detectors.py), so a scope keeps its learned
baseline, and a customer its churn history, across a restart and moves with its partition on
a rebalance.

Taking a snapshot reads the scopes whose detector ran since the last one (``Ledger.changed_drop``,
one dict entry per detector run: nothing is encoded on the hot path) and, when the worker stops
or gives its partitions away, the scopes with buffered observations too. Restoring never
overwrites live state: a scope that has seen events here is newer than any snapshot of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from services.alerts.detectors import drop, surge
from services.alerts.flows.drops import HOT_FRACTION, new_drop_scope, rederive
from services.alerts.flows.state import (
    ChurnRuntime,
    Customer,
    DropRuntime,
    DropScope,
    Ledger,
    SurgeRuntime,
    SurgeScope,
)
from services.alerts.flows.surges import new_surge_scope, note_close
from services.alerts.flows.sweep import DROP_EVICT_AFTER, surge_evict_after
from services.alerts.state.detectors import (
    ChurnSnapshot,
    DropSnapshot,
    SurgeSnapshot,
    churn_snapshot,
    same_config,
    snapshot,
    surge_snapshot,
)

KeepScope = Callable[[tuple[str, ...], tuple[str, ...]], bool]


def take(book: Ledger, runtimes: Iterable[DropRuntime], worker_id: str, *,
         buffered: bool) -> list[DropSnapshot]:
    """Snapshots of the scopes that changed since the last call (and, with `buffered`, of
    those holding observations the detector has not run yet)."""
    out = []
    for name, level, values, scope in _current(runtimes, book.changed_drop, book.dirty_drop, buffered):
        config: drop.DropConfig = scope.eff.config  # type: ignore[assignment]
        out.append(snapshot(name, level, values, config, scope.state, scope.buf, worker_id, scope.last_at))
    return out


S = TypeVar("S", DropScope, SurgeScope)


def _current(runtimes: Iterable[DropRuntime | SurgeRuntime], changed: dict[int, tuple[str, S]],
             dirty: Mapping[int, tuple[Any, S, datetime]], buffered: bool,
             ) -> Iterator[tuple[str, tuple[str, ...], tuple[str, ...], S]]:
    """The changed (with `buffered`, also the buffering) scopes still kept, with their rule name,
    level and values; empties `changed`."""
    by_name = {rt.name: rt for rt in runtimes}
    scopes = dict(changed)
    changed.clear()
    if buffered:
        for runtime, scope, _since in dirty.values():
            scopes.setdefault(id(scope), (runtime.name, scope))
    for name, scope in scopes.values():
        level, values = tuple(scope.labels), tuple(scope.labels.values())
        rt = by_name.get(name)
        if rt is not None and rt.tables.get(level, {}).get(values) is scope:  # not evicted, swept, reloaded away
            yield name, level, values, scope


def restore(book: Ledger, runtimes: Iterable[DropRuntime], records: Iterable[DropSnapshot],
            keep: KeepScope, now: datetime) -> int:
    """Give the scopes `keep` accepts their snapshotted state; returns how many."""
    return sum(_restore_scope(book, rt, record, level, values, now)
               for rt, record, level, values in _kept(book, runtimes, records, keep, now, lambda _rt, _labels: DROP_EVICT_AFTER))


R = TypeVar("R", DropSnapshot, SurgeSnapshot)
RT = TypeVar("RT", DropRuntime, SurgeRuntime)


def _kept(book: Ledger, runtimes: Iterable[RT], records: Iterable[R], keep: KeepScope, now: datetime,
          evict_after: Callable[[RT, dict[str, str]], timedelta],
          ) -> Iterator[tuple[RT, R, tuple[str, ...], tuple[str, ...]]]:
    """The records of scopes `keep` accepts under a current rule, with their runtime, level and
    values; a record idle as long as the sweep would evict its scope is tombstoned instead."""
    by_name = {rt.name: rt for rt in runtimes}
    for record in records:
        rt = by_name.get(record.rule)
        level, values = tuple(record.level), tuple(record.values)
        if rt is None or level not in rt.levels or not keep(level, values):
            continue
        if record.last_at is not None and now - record.last_at >= evict_after(rt, dict(zip(level, values, strict=True))):
            book.forgotten.append(record.key())
            continue
        yield rt, record, level, values


def _restore_scope(book: Ledger, rt: DropRuntime, record: DropSnapshot, level: tuple[str, ...],
                   values: tuple[str, ...], now: datetime) -> bool:
    scope: DropScope | None = rt.tables[level].get(values)
    if scope is not None and (scope.state.n_seen or scope.buf):
        return False  # live state here is newer
    eff = rt.eff(dict(zip(level, values, strict=True)))
    config: drop.DropConfig = eff.config  # type: ignore[assignment]
    if not eff.enabled or record.config.get("metric") != config.metric:
        return False
    state = record.drop_state()
    if state is None:
        return False
    if not same_config(record, config):
        state = rederive(config, state)  # the baseline stays, weights and threshold follow the rule
    scope = scope or new_drop_scope(rt, level, values, now)
    scope.last_at = record.last_at or now  # idleness counts from the last feedback, not the restart
    scope.state = state
    scope.buf = list(record.buffered)  # type: ignore[arg-type]  # at is None only for foreign input
    scope.hot = state.active and state.s > HOT_FRACTION * state.h
    if scope.buf:
        book.dirty_drop[id(scope)] = (rt, scope, now)
    if scope.alert is not None:  # taken over before: its quiet period counts from here
        scope.last_alarm_n = state.n_seen
    return True


def take_churn(book: Ledger, runtimes: Iterable[ChurnRuntime], worker_id: str) -> list[ChurnSnapshot]:
    """Churn histories of the customers whose detector ran since the last call."""
    by_name = {rt.name: rt for rt in runtimes}
    changed = dict(book.changed_churn)
    book.changed_churn.clear()
    out = []
    for (name, cid), cust in changed.items():
        rt = by_name.get(name)
        if rt is not None and rt.customers.get(cid) is cust:  # not evicted, swept or reloaded away
            out.append(churn_snapshot(name, cust.state, cust.last_negative_at, worker_id))
    return out


def restore_churn(runtimes: Iterable[ChurnRuntime], records: Iterable[ChurnSnapshot],
                  keep: Callable[[str], bool]) -> int:
    """Give the customers `keep` accepts their churn history; returns how many. A customer
    seen here already keeps its live history (newer)."""
    by_name = {rt.name: rt for rt in runtimes}
    restored = 0
    for record in records:
        rt = by_name.get(record.rule)
        if rt is None or record.customer_id in rt.customers or not keep(record.customer_id):
            continue
        state = record.churn_state()
        if state is not None:
            rt.customers[record.customer_id] = Customer(state=state, last_negative_at=record.last_negative_at)
            restored += 1
    return restored


def take_surge(book: Ledger, runtimes: Iterable[SurgeRuntime], worker_id: str, *,
               buffered: bool) -> list[SurgeSnapshot]:
    """Surge windows of the scopes whose detector ran since the last call (with `buffered`, also
    of those holding comments not yet run)."""
    return [surge_snapshot(name, level, values, scope.state, scope.buf, scope.last_at, worker_id)
            for name, level, values, scope in _current(runtimes, book.changed_surge, book.dirty_surge, buffered)]


def restore_surge(book: Ledger, runtimes: Iterable[SurgeRuntime], records: Iterable[SurgeSnapshot],
                  keep: KeepScope, now: datetime) -> int:
    """Give the scopes `keep` accepts their surge windows; returns how many. A scope with live
    windows keeps them."""
    return sum(_restore_surge_scope(book, rt, record, level, values, now)
               for rt, record, level, values in _kept(book, runtimes, records, keep, now, _surge_evict_after))


def _surge_evict_after(rt: SurgeRuntime, labels: dict[str, str]) -> timedelta:
    cfg: surge.SurgeConfig = rt.eff(labels).config  # type: ignore[assignment]
    return surge_evict_after(cfg)


def _restore_surge_scope(book: Ledger, rt: SurgeRuntime, record: SurgeSnapshot, level: tuple[str, ...],
                         values: tuple[str, ...], now: datetime) -> bool:
    scope = rt.tables[level].get(values)
    if scope is not None and (scope.state.current is not None or scope.state.history or scope.buf):
        return False  # live windows here are newer
    state = record.surge_state()
    if state is None:
        return False
    scope = scope or new_surge_scope(rt, level, values, now)
    scope.state, scope.buf = state, record.comments()
    scope.last_at = record.last_at or now
    if scope.buf:
        book.dirty_surge[id(scope)] = (rt, scope, now)
    note_close(rt, scope)  # a tick closes its open window by time
    return True
