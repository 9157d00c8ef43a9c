"""Rules -> runtimes, and a reload's carry-over: detector state (and firing alerts) stay where
the rule still exists with the same kind (and metric) and the scope is still evaluated; the
alerts of removed or disabled rules and scopes are handed to `retire` (resolved by the next
tick)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schemas.alert import Alert
from services.alerts.detectors import surge
from services.alerts.flows.drops import rederive
from services.alerts.flows.state import (
    ChurnRuntime,
    DropRuntime,
    Runtime,
    SurgeRuntime,
    scope_getter,
)
from services.alerts.flows.surges import note_close
from services.alerts.flows.sweep import Runtimes
from services.alerts.rules import RuleSet
from services.alerts.rules.compile import may_apply
from services.alerts.rules.models import ChurnRule, DropRule, SurgeRule

Retire = Callable[[Alert, str], None]


@dataclass(slots=True)
class Compiled:
    runtimes: Runtimes
    #: every scope level some rule keeps state at, in first-use order
    levels: list[tuple[str, ...]]
    #: per level: the scope key out of an event's label values
    getters: list[Callable[[tuple[str, ...]], tuple[str, ...]]]


def compile_rules(rules: RuleSet) -> Compiled:
    runtimes = Runtimes([], [], [])
    levels: list[tuple[str, ...]] = []
    for rule in rules.rules:
        if not may_apply(rule):
            continue
        rt = _runtime(rules, rule, runtimes)
        slots = []
        for names in rt.levels:
            if names not in levels:
                levels.append(names)
            table = rt.tables[names] if hasattr(rt, "tables") else None
            slots.append((levels.index(names), names, table))
        rt.level_slots = slots
    return Compiled(runtimes, levels, [scope_getter(n) for n in levels])


def _runtime(rules: RuleSet, rule: DropRule | SurgeRule | ChurnRule, into: Runtimes) -> Runtime:
    rt: Runtime
    if isinstance(rule, DropRule):
        rt = DropRuntime(rules, rule)
        into.drop.append(rt)
    elif isinstance(rule, SurgeRule):
        rt = SurgeRuntime(rules, rule)
        into.surge.append(rt)
    else:
        rt = ChurnRuntime(rules, rule)
        into.churn.append(rt)
    return rt


def carry_over(previous: dict[str, Runtime], new: Runtimes, retire: Retire) -> None:
    """Move the previous runtimes' state into the new ones (see the module doc)."""
    kept: set[str] = set()
    for rt in (*new.drop, *new.surge, *new.churn):
        old = previous.get(rt.name)
        if old is None or old.identity() != rt.identity():
            continue
        kept.add(rt.name)
        _adopt(old, rt, retire)
    for name, old in previous.items():
        if name not in kept:
            for alert in alerts_of(old):
                retire(alert, "rule removed or changed")


def alerts_of(rt: Runtime) -> list[Alert]:
    if isinstance(rt, DropRuntime):
        return [s.alert for s in rt.scopes.values() if s.alert is not None]
    if isinstance(rt, SurgeRuntime):
        return [a for s in rt.scopes.values() for a in s.alerts.values()]
    assert isinstance(rt, ChurnRuntime)
    return [c.alert for c in rt.customers.values() if c.alert is not None]


def _adopt(old: Runtime, new: Runtime, retire: Retire) -> None:
    if isinstance(old, DropRuntime) and isinstance(new, DropRuntime):
        _adopt_drop(old, new, retire)
    elif isinstance(old, SurgeRuntime) and isinstance(new, SurgeRuntime):
        _adopt_surge(old, new, retire)
    elif isinstance(old, ChurnRuntime) and isinstance(new, ChurnRuntime):
        new.customers = old.customers
        new.alerting = old.alerting
        for cust in new.customers.values():
            cust.config = None  # until its next event, idleness is judged by the new base config


def _adopt_drop(old: DropRuntime, new: DropRuntime, retire: Retire) -> None:
    for (names, key), scope in old.scopes.items():
        if names not in new.levels:
            if scope.alert is not None:
                retire(scope.alert, "scope removed")
            continue
        eff = new.eff(scope.labels)
        if not eff.enabled:
            if scope.alert is not None:
                retire(scope.alert, "rule disabled for scope")
            continue
        if eff.config != scope.eff.config:
            scope.state = rederive(eff.config, scope.state)  # type: ignore[arg-type]
        scope.eff = eff
        scope.enabled = eff.enabled
        new.put(names, key, scope)
        if scope.alert is not None:
            new.alerting[id(scope)] = scope


def _adopt_surge(old: SurgeRuntime, new: SurgeRuntime, retire: Retire) -> None:
    for (names, key), scope in old.scopes.items():
        eff = new.eff(scope.labels)
        if names not in new.levels or not eff.enabled:
            for alert in scope.alerts.values():
                retire(alert, "scope removed or disabled")
            continue
        cfg: surge.SurgeConfig = eff.config  # type: ignore[assignment]
        if cfg.window != scope.eff.config.window:  # type: ignore[union-attr]
            scope.state = surge.new_state()  # windows are aligned to the window length
        scope.eff = eff
        new.put(names, key, scope)
        note_close(new, scope)
