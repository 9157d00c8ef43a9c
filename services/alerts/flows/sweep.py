"""Idle-state eviction: per-scope and per-customer state that carries nothing any more is
forgotten, a bounded slice per tick so one tick never walks millions of customers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerts.detectors import churn, surge
from services.alerts.flows.state import ChurnRuntime, DropRuntime, SurgeRuntime
from services.alerts.state.detectors import churn_key, detector_key, surge_key

#: How often (in ``now`` time) idle detector state is looked for and evicted.
SWEEP_EVERY = timedelta(hours=1)
#: Entries looked at per tick by the eviction sweep.
SWEEP_SLICE = 2000
#: Drop-detector state of a scope without feedback for this long is evicted (baseline forgotten).
DROP_EVICT_AFTER = timedelta(days=90)


@dataclass(slots=True)
class Runtimes:
    """The evaluator's current runtimes by kind (replaced as a whole by a reload)."""

    drop: list[DropRuntime]
    surge: list[SurgeRuntime]
    churn: list[ChurnRuntime]


class Sweeper:
    """Runs one pass at most every SWEEP_EVERY, a slice of SWEEP_SLICE entries per step."""

    def __init__(self, current: Callable[[], Runtimes], forgotten: list[str]) -> None:
        # read per kind as the pass reaches it: a reload mid-pass sweeps the new runtimes
        self._current = current
        self._forgotten = forgotten  # the records of what it evicts are tombstoned
        self._last: datetime | None = None
        self._pass: Iterator[None] | None = None

    def step(self, now: datetime) -> None:
        if self._pass is None:
            if self._last is not None and now - self._last < SWEEP_EVERY:
                return
            self._last = now
            self._pass = self._sweep(now)
        if next(self._pass, StopIteration) is StopIteration:
            self._pass = None

    def _sweep(self, now: datetime) -> Iterator[None]:
        """One pass; yields every SWEEP_SLICE entries looked at."""
        done = 0
        for rt3 in list(self._current().churn):
            for cid in list(rt3.customers):
                done += 1
                if done % SWEEP_SLICE == 0:
                    yield
                if _sweep_customer(rt3, cid, now):
                    self._forgotten.append(churn_key(rt3.name, cid))
        for rt in list(self._current().drop):
            for k in list(rt.scopes):
                done += 1
                if done % SWEEP_SLICE == 0:
                    yield
                if _sweep_drop_scope(rt, k, now):
                    self._forgotten.append(detector_key(rt.name, *k))
        for rt2 in list(self._current().surge):
            for k in list(rt2.scopes):
                done += 1
                if done % SWEEP_SLICE == 0:
                    yield
                if _sweep_surge_scope(rt2, k, now):
                    self._forgotten.append(surge_key(rt2.name, *k))


Key = tuple[tuple[str, ...], tuple[str, ...]]


def _sweep_customer(rt: ChurnRuntime, cid: str, now: datetime) -> bool:
    """Forget the customer if idle; whether it was."""
    cust = rt.customers.get(cid)
    if cust is None or cust.alert is not None:
        return False
    cfg = cust.config or rt.base_eff.config
    if churn.is_idle(cfg, cust.state, now):  # type: ignore[arg-type]
        del rt.customers[cid]
        return True
    return False


def _sweep_drop_scope(rt: DropRuntime, k: Key, now: datetime) -> bool:
    """Evict the scope if idle; whether it was."""
    s = rt.scopes.get(k)
    if s is not None and s.alert is None and not s.buf and s.last_at is not None \
            and now - s.last_at >= DROP_EVICT_AFTER:
        rt.remove(*k)
        return True
    return False


def surge_evict_after(cfg: surge.SurgeConfig) -> timedelta:
    """How long a surge scope stays idle before it is evicted: its baseline windows and two more."""
    return cfg.window * (cfg.baseline_windows + 2)


def _sweep_surge_scope(rt: SurgeRuntime, k: Key, now: datetime) -> bool:
    """Evict the scope if idle; whether it was."""
    s = rt.scopes.get(k)
    if s is None or s.alerts or s.buf or s.last_at is None:
        return False
    cfg: surge.SurgeConfig = s.eff.config  # type: ignore[assignment]
    if now - s.last_at >= surge_evict_after(cfg):
        rt.remove(*k)
        return True
    return False
