"""What the evaluator keeps: one runtime per rule (its compiled form and per-scope or
per-customer state) and the ledger the concerns share (firing alerts, buffered scopes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.alert import Alert
from schemas.scored import ScoredEvent
from services.alerts.detectors import churn, drop, surge
from services.alerts.rules import RuleSet
from services.alerts.rules.compile import Effective, effective
from services.alerts.rules.models import SCOPE_LABELS, ChurnRule, DropRule, SurgeRule

# ----------------------------------------------------------------------------- per-scope state


@dataclass(slots=True)
class DropScope:
    labels: dict[str, str]
    eff: Effective
    state: drop.DropState
    enabled: bool = True
    buf: list[tuple[str, datetime, float]] = field(default_factory=list)
    hot: bool = False
    last_at: datetime | None = None  # `now` of the last detector update
    alert: Alert | None = None
    last_alarm_n: int = 0
    last_alarm_at: datetime | None = None
    realarms: int = 0


@dataclass(slots=True)
class SurgeScope:
    labels: dict[str, str]
    eff: Effective
    state: surge.SurgeState
    buf: list[surge.CommentObservation] = field(default_factory=list)
    last_at: datetime | None = None
    alerts: dict[str, Alert] = field(default_factory=dict)  # theme -> firing alert


@dataclass(slots=True)
class Customer:
    state: churn.ChurnState
    alert: Alert | None = None
    last_negative_at: datetime | None = None
    config: churn.ChurnConfig | None = None


@dataclass(slots=True)
class Ledger:
    """State shared across the rules: firing alerts by fingerprint, the scopes with buffered
    observations -> (runtime, scope, `now` of the first one), the drop scopes to snapshot."""

    firing: dict[str, Alert] = field(default_factory=dict)
    dirty_drop: dict[int, tuple[DropRuntime, DropScope, datetime]] = field(default_factory=dict)
    dirty_surge: dict[int, tuple[SurgeRuntime, SurgeScope, datetime]] = field(default_factory=dict)
    # drop scopes whose detector state changed since the last snapshot: id -> (rule name, scope)
    changed_drop: dict[int, tuple[str, DropScope]] = field(default_factory=dict)
    # surge scopes whose windows changed since the last snapshot: id -> (rule name, scope)
    changed_surge: dict[int, tuple[str, SurgeScope]] = field(default_factory=dict)
    # customers whose churn history changed since the last snapshot: (rule name, id) -> customer
    changed_churn: dict[tuple[str, str], Customer] = field(default_factory=dict)
    # keys of detector records to tombstone: scopes and customers evicted as idle, records stale
    # at restore
    forgotten: list[str] = field(default_factory=list)


DROP_VALUE: dict[str, Callable[[ScoredEvent], Any]] = {
    "nps": lambda s: s.nps,
    "detractor_share": lambda s: s.nps,
    "csat_top_box": lambda s: s.csat_top_box,
    "sentiment": lambda s: s.text.sentiment if s.text is not None else None,
    "csat": lambda s: s.csat,
    "ces": lambda s: s.ces,
    "sqi": lambda s: s.sqi,
}


def scope_getter(names: tuple[str, ...]) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """The scope key at level `names` out of an event's label values (in SCOPE_LABELS order);
    unrolled for the usual sizes because it runs per event and level."""
    idx = tuple(SCOPE_LABELS.index(n) for n in names)
    if not idx:
        return lambda vals: ()
    if len(idx) == 1:
        i = idx[0]
        return lambda vals: (vals[i],)
    if len(idx) == 2:
        i, j = idx
        return lambda vals: (vals[i], vals[j])
    if len(idx) == 3:
        i, j, k = idx
        return lambda vals: (vals[i], vals[j], vals[k])
    return lambda vals: tuple(vals[i] for i in idx)


# ----------------------------------------------------------------------------- per-rule runtimes


class Runtime:
    """One rule's compiled form and all its per-scope state."""

    # (index into the evaluator's levels, level label names, per-level scope table or None)
    level_slots: list[tuple[int, tuple[str, ...], Any]]

    def __init__(self, ruleset: RuleSet, rule: DropRule | SurgeRule | ChurnRule) -> None:
        self.ruleset = ruleset
        self.rule = rule
        self.name = rule.name
        self.levels: list[tuple[str, ...]] = ruleset.scopes_of(rule)
        self.has_overrides = bool(rule.overrides)
        self.base_eff = effective(ruleset, rule, {})  # overrides need labels; see eff()
        # the labels overrides look at: the effective rule depends on these values only
        self.override_labels = tuple(sorted({k for ov in rule.overrides for k in ov.match}))
        self._eff_cache: dict[tuple[str | None, ...], Effective] = {}

    def eff(self, labels: dict[str, str]) -> Effective:
        if not self.has_overrides:
            return self.base_eff
        key = tuple(labels.get(k) for k in self.override_labels)
        hit = self._eff_cache.get(key)
        if hit is None:
            if len(self._eff_cache) > 100_000:
                self._eff_cache.clear()
            hit = self._eff_cache[key] = effective(self.ruleset, self.rule, labels)
        return hit

    def identity(self) -> tuple[str, str]:
        return (self.rule.kind, getattr(self.rule, "metric", ""))

    # scopes are kept twice: by (level, key) for housekeeping, and per level for the hot path
    def put(self, names: tuple[str, ...], key: tuple[str, ...], scope: Any) -> None:
        self.scopes[(names, key)] = scope  # type: ignore[attr-defined]
        self.tables.setdefault(names, {})[key] = scope  # type: ignore[attr-defined]

    def remove(self, names: tuple[str, ...], key: tuple[str, ...]) -> None:
        self.scopes.pop((names, key), None)  # type: ignore[attr-defined]
        self.tables.get(names, {}).pop(key, None)  # type: ignore[attr-defined]


class DropRuntime(Runtime):
    rule: DropRule

    def __init__(self, ruleset: RuleSet, rule: DropRule) -> None:
        super().__init__(ruleset, rule)
        self.value = DROP_VALUE[rule.metric]
        self.scopes: dict[tuple[tuple[str, ...], tuple[str, ...]], DropScope] = {}
        self.tables: dict[tuple[str, ...], dict[tuple[str, ...], DropScope]] = {n: {} for n in self.levels}
        self.alerting: dict[int, DropScope] = {}  # scopes with a firing alert


class SurgeRuntime(Runtime):
    rule: SurgeRule

    def __init__(self, ruleset: RuleSet, rule: SurgeRule) -> None:
        super().__init__(ruleset, rule)
        self.scopes: dict[tuple[tuple[str, ...], tuple[str, ...]], SurgeScope] = {}
        self.tables: dict[tuple[str, ...], dict[tuple[str, ...], SurgeScope]] = {n: {} for n in self.levels}
        self.next_close: datetime | None = None


class ChurnRuntime(Runtime):
    rule: ChurnRule

    def __init__(self, ruleset: RuleSet, rule: ChurnRule) -> None:
        super().__init__(ruleset, rule)
        self.customers: dict[str, Customer] = {}
        self.alerting: dict[str, Customer] = {}  # customers with a firing alert
        self.intent = "intent" in rule.signals
        self.repeated = "repeated" in rule.signals
