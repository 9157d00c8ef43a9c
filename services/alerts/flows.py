"""Scored events -> alerts: the rules applied per scope with the detectors. Pure (time passed in).

:class:`AlertEvaluator` keeps one detector state per rule and scope (aggregate drop, theme
surge) or per rule and customer (churn risk) and turns the detectors' decisions into
``schemas.alert.Alert`` state changes:

* a condition that starts firing gives one ``firing`` alert; while it fires, further detector
  decisions for it change nothing (a lasting drop re-alarms about every detection delay, a churn
  detector may fire both of its signals: one alert);
* the alert is emitted once more, ``resolved`` with ``ends_at``, when the condition clears:

  - aggregate drop: no new alarm for ``resolve.quiet_n`` responses of the scope or for
    ``resolve.quiet_for``, and the CUSUM statistic at most ``resolve.reset_fraction`` of its
    threshold (the detector restarts the statistic at 0 after an alarm, so a drop that persists
    alarms again; one that is over stays quiet);
  - theme surge: a later window of the scope closes without that theme surging;
  - churn risk: ``resolve.quiet_for`` without a further negative experience of the customer, or
    the customer's next feedback is a promoter (``resolve.on_promoter``);
  - the rule is removed or disabled for the scope by a reload (emitted by the next ``on_tick``).

Identity: ``fingerprint`` = hash of the rule name and the scope's identity labels (drop: the
scope labels; surge: the scope labels and the theme; churn: the customer id), so it is stable
across restarts and reloads; ``alert_id`` = fingerprint + start time (ms), so a condition that
fires again after resolving is a new alert.

Cost: ``on_scored`` only appends the event's values to small per-scope buffers; a buffer goes
through the detector when it holds ``batch_size`` observations, at once while the scope's
CUSUM statistic is elevated (above half its threshold, where an alarm may be near), and on the
first ``on_tick`` after its oldest observation waited ``max_delay`` (default 30 s; ``flush``
forces all). Detector updates are sequential, so batching gives exactly the decisions that
per-event updates would; only their emission may wait up to ``max_delay`` plus a tick, which is
negligible next to the hundreds of responses a drop takes to detect. Alert times:
``starts_at``/``ends_at`` are the ``now`` of the
call that emitted them; the evidence carries the event-time window.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.alert import Alert, AlertEvidence, AlertKind, AlertStatus, Severity
from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel
from services.alerts.detectors import churn, drop, surge
from services.alerts.detectors.decision import Decision
from services.alerts.rules import RuleSet
from services.alerts.rules.compile import Effective, effective, may_apply
from services.alerts.rules.models import SCOPE_LABELS, ChurnRule, DropRule, SurgeRule

log = logging.getLogger("ksp.alerts.flows")

#: Default observations buffered per scope before the detector runs (see the module doc).
BATCH_SIZE = 32
#: A scope whose CUSUM statistic is above this fraction of its threshold is updated per event.
HOT_FRACTION = 0.5
#: How often (in ``now`` time) idle detector state is looked for and evicted.
SWEEP_EVERY = timedelta(hours=1)
#: Entries looked at per tick by the eviction sweep.
SWEEP_SLICE = 2000
#: A tick runs buffered observations through the detectors once the oldest waited this long.
MAX_DELAY = timedelta(seconds=30)
#: Drop-detector state of a scope without feedback for this long is evicted (baseline forgotten).
DROP_EVICT_AFTER = timedelta(days=90)


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """Stable identity of a condition: the rule and its identity labels (order-independent)."""
    canonical = rule + "|" + "|".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def alert_id(fp: str, starts_at: datetime) -> str:
    return f"{fp}-{int(starts_at.timestamp() * 1000)}"


def _scope_text(labels: dict[str, str]) -> str:
    return "/".join(labels[k] for k in SCOPE_LABELS if k in labels) or "all feedback"


def _resolved(alert: Alert, now: datetime, reason: str, **details: float | str) -> Alert:
    evidence = alert.evidence.model_copy(
        update={"details": {**alert.evidence.details, "resolved_reason": reason, **details}}
    )
    return alert.model_copy(update={
        "status": AlertStatus.resolved,
        "ends_at": max(now, alert.starts_at),
        "evidence": evidence,
    })


def _scope_getter(names: tuple[str, ...]) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
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


def _fmt(metric: str, x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if metric in ("detractor_share", "top_box", "csat_top_box", "theme_share_of_negative"):
        return f"{100 * x:.1f}%"
    if metric == "sentiment" or metric == "mean" and abs(x) <= 1:
        return f"{x:+.2f}"
    return f"{x:.1f}"


def _fmt_change(metric: str, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return ""
    if metric in ("detractor_share", "top_box", "csat_top_box", "theme_share_of_negative"):
        return f"; 95% interval of the change {100 * lo:+.1f}..{100 * hi:+.1f} pp"
    return f"; 95% interval of the change {lo:+.2f}..{hi:+.2f}"


# ----------------------------------------------------------------------------- per-scope state


@dataclass(slots=True)
class _DropScope:
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
class _SurgeScope:
    labels: dict[str, str]
    eff: Effective
    state: surge.SurgeState
    buf: list[surge.CommentObservation] = field(default_factory=list)
    last_at: datetime | None = None
    alerts: dict[str, Alert] = field(default_factory=dict)  # theme -> firing alert


@dataclass(slots=True)
class _Customer:
    state: churn.ChurnState
    alert: Alert | None = None
    last_negative_at: datetime | None = None
    config: churn.ChurnConfig | None = None


_DROP_VALUE: dict[str, Callable[[ScoredEvent], Any]] = {
    "nps": lambda s: s.nps,
    "detractor_share": lambda s: s.nps,
    "csat_top_box": lambda s: s.csat_top_box,
    "sentiment": lambda s: s.text.sentiment if s.text is not None else None,
    "csat": lambda s: s.csat,
    "ces": lambda s: s.ces,
    "sqi": lambda s: s.sqi,
}


class _Runtime:
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


class _DropRuntime(_Runtime):
    rule: DropRule

    def __init__(self, ruleset: RuleSet, rule: DropRule) -> None:
        super().__init__(ruleset, rule)
        self.value = _DROP_VALUE[rule.metric]
        self.scopes: dict[tuple[tuple[str, ...], tuple[str, ...]], _DropScope] = {}
        self.tables: dict[tuple[str, ...], dict[tuple[str, ...], _DropScope]] = {n: {} for n in self.levels}
        self.alerting: dict[int, _DropScope] = {}  # scopes with a firing alert


class _SurgeRuntime(_Runtime):
    rule: SurgeRule

    def __init__(self, ruleset: RuleSet, rule: SurgeRule) -> None:
        super().__init__(ruleset, rule)
        self.scopes: dict[tuple[tuple[str, ...], tuple[str, ...]], _SurgeScope] = {}
        self.tables: dict[tuple[str, ...], dict[tuple[str, ...], _SurgeScope]] = {n: {} for n in self.levels}
        self.next_close: datetime | None = None


class _ChurnRuntime(_Runtime):
    rule: ChurnRule

    def __init__(self, ruleset: RuleSet, rule: ChurnRule) -> None:
        super().__init__(ruleset, rule)
        self.customers: dict[str, _Customer] = {}
        self.alerting: dict[str, _Customer] = {}  # customers with a firing alert
        self.intent = "intent" in rule.signals
        self.repeated = "repeated" in rule.signals


# ----------------------------------------------------------------------------- the evaluator


class AlertEvaluator:
    """Applies a :class:`RuleSet` to scored events; returns alerts whose status changed."""

    def __init__(self, rules: RuleSet, *, batch_size: int = BATCH_SIZE,
                 max_delay: timedelta = MAX_DELAY) -> None:
        self.batch_size = max(1, batch_size)
        self.max_delay = max_delay
        self._firing: dict[str, Alert] = {}
        self._pending: list[Alert] = []  # emitted by the next on_tick (flushed during a reload)
        self._retiring: list[tuple[Alert, str]] = []  # resolved by the next on_tick (reload)
        # scopes with buffered observations -> (runtime, scope, `now` of the first one)
        self._dirty_drop: dict[int, tuple[_DropRuntime, _DropScope, datetime]] = {}
        self._dirty_surge: dict[int, tuple[_SurgeRuntime, _SurgeScope, datetime]] = {}
        self._last_sweep: datetime | None = None
        self._sweeper: Iterator[None] | None = None
        self._sweep_now: datetime | None = None
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
            self._on_churn(scored, now, out)
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
            self._on_churn(scored, now, out)
        return out

    def scope_levels(self) -> list[tuple[str, ...]]:
        """The scope levels some drop or surge rule keeps state at (what to repartition by)."""
        used = {names for rt in (*self._drop, *self._surge) for names in rt.levels}
        return [names for names in self._levels if names in used]

    def _on_scopes(self, scored: ScoredEvent, now: datetime, only: tuple[str, ...] | None,
                   out: list[Alert]) -> None:
        ev = scored.event
        vals = None
        keys: list[tuple[str, ...] | None] = self._key_slots
        if self._drop:
            batch_size = self.batch_size
            obs_at = ev.occurred_at
            eid = ev.event_id or ""
            for rt in self._drop:
                v = rt.value(scored)
                if v is None:
                    continue
                if vals is None:
                    vals = (ev.touchpoint.value, ev.unit, ev.segment, ev.source)
                    for i in range(len(keys)):
                        keys[i] = None
                obs = (eid, obs_at, v)
                for li, names, table in rt.level_slots:
                    if only is not None and names != only:
                        continue
                    key = keys[li]
                    if key is None:
                        key = keys[li] = self._level_getters[li](vals)
                    scope = table.get(key)
                    if scope is None:
                        scope = self._new_drop_scope(rt, names, key, now)
                    if not scope.enabled:
                        continue
                    buf = scope.buf
                    buf.append(obs)
                    n = len(buf)
                    if scope.hot or n >= batch_size:
                        self._flush_drop(rt, scope, now, out)
                    elif n == 1:
                        self._dirty_drop[id(scope)] = (rt, scope, now)
        text = scored.text
        if self._surge and text is not None and (
            text.sentiment_label is SentimentLabel.negative or scored.complaint
        ):
            if vals is None:
                vals = (ev.touchpoint.value, ev.unit, ev.segment, ev.source)
                for i in range(len(keys)):
                    keys[i] = None
            obs2 = surge.CommentObservation(ev.event_id or "", ev.occurred_at, True,
                                            tuple(text.negative_themes))
            for rt2 in self._surge:
                for li, names, table2 in rt2.level_slots:
                    if only is not None and names != only:
                        continue
                    key = keys[li]
                    if key is None:
                        key = keys[li] = self._level_getters[li](vals)
                    sscope = table2.get(key)
                    if sscope is None:
                        sscope = self._new_surge_scope(rt2, names, key, now)
                    if not sscope.eff.enabled:
                        continue
                    sscope.buf.append(obs2)
                    if len(sscope.buf) >= self.batch_size:
                        self._flush_surge(rt2, sscope, None, now, out)
                    elif len(sscope.buf) == 1:
                        self._dirty_surge[id(sscope)] = (rt2, sscope, now)

    def on_tick(self, now: datetime) -> list[Alert]:
        out: list[Alert] = list(self._pending)
        self._pending.clear()
        for alert, reason in self._retiring:
            if self._firing.get(alert.fingerprint) is alert:
                del self._firing[alert.fingerprint]
                out.append(_resolved(alert, now, reason))
        self._retiring.clear()
        self._flush_buffers(now, now - self.max_delay, out)
        # surge windows closing by time
        for rt2 in self._surge:
            if rt2.next_close is not None and now >= rt2.next_close:
                rt2.next_close = None
                for sscope in rt2.scopes.values():
                    self._flush_surge(rt2, sscope, now, now, out)
        # conditions clearing by time
        for rt in self._drop:
            for scope in list(rt.alerting.values()):
                if self._drop_clear(rt, scope, now):
                    self._resolve_drop(rt, scope, now, out)
        for rt3 in self._churn:
            quiet = rt3.rule.resolve.quiet_for
            for cid, cust in list(rt3.alerting.items()):
                if cust.last_negative_at is not None and now - cust.last_negative_at >= quiet:
                    self._resolve_churn(rt3, cid, cust, now, "quiet", out)
                    if cid.startswith("event:"):
                        rt3.customers.pop(cid, None)
        self._sweep_step(now)
        return out

    def flush(self, now: datetime) -> list[Alert]:
        """Run every buffered observation through its detector now (a tick does this for
        buffers older than ``max_delay``); for tests, backtests and shutdown."""
        out: list[Alert] = []
        self._flush_buffers(now, None, out)
        return out

    def _flush_buffers(self, now: datetime, older_than: datetime | None, out: list[Alert]) -> None:
        for key, (rt, scope, since) in list(self._dirty_drop.items()):
            if older_than is None or since <= older_than:
                self._dirty_drop.pop(key, None)
                if scope.buf:
                    self._flush_drop(rt, scope, now, out)
        for key, (rt2, sscope, since) in list(self._dirty_surge.items()):
            if older_than is None or since <= older_than:
                self._dirty_surge.pop(key, None)
                if sscope.buf:
                    self._flush_surge(rt2, sscope, None, now, out)

    def reload(self, rules: RuleSet) -> None:
        """Apply new rules; detector state (and firing alerts) stay where the rule still exists
        with the same kind (and metric) and the scope is still evaluated. Alerts of removed or
        disabled rules/scopes are resolved by the next :meth:`on_tick`."""
        previous = {rt.name: rt for rt in (*self._drop, *self._surge, *self._churn)}
        # buffered data belongs to the old configuration: run it through first
        out: list[Alert] = []
        for rt, scope, since in list(self._dirty_drop.values()):
            if scope.buf:  # `now` of the buffered data's arrival: the latest time we know
                self._flush_drop(rt, scope, max(since, scope.last_at or since), out)
        for rt2, sscope, since in list(self._dirty_surge.values()):
            if sscope.buf:
                self._flush_surge(rt2, sscope, None, max(since, sscope.last_at or since), out)
        self._dirty_drop.clear()
        self._dirty_surge.clear()
        self._pending.extend(out)
        self._build(rules, previous=previous)

    # ---------------------------------------------------------------- build / reload

    def _build(self, rules: RuleSet, previous: dict[str, _Runtime] | None) -> None:
        self._rules = rules
        self._drop: list[_DropRuntime] = []
        self._surge: list[_SurgeRuntime] = []
        self._churn: list[_ChurnRuntime] = []
        levels: list[tuple[str, ...]] = []
        for rule in rules.rules:
            if not may_apply(rule):
                continue
            rt: _Runtime
            if isinstance(rule, DropRule):
                rt = _DropRuntime(rules, rule)
                self._drop.append(rt)
            elif isinstance(rule, SurgeRule):
                rt = _SurgeRuntime(rules, rule)
                self._surge.append(rt)
            else:
                rt = _ChurnRuntime(rules, rule)
                self._churn.append(rt)
            slots = []
            for names in rt.levels:
                if names not in levels:
                    levels.append(names)
                slots.append((levels.index(names), names, rt.tables[names] if hasattr(rt, "tables") else None))
            rt.level_slots = slots
        self._levels = levels
        self._level_getters = [_scope_getter(n) for n in levels]
        self._key_slots: list[tuple[str, ...] | None] = [None] * len(levels)
        if previous is None:
            return
        kept: set[str] = set()
        for new in (*self._drop, *self._surge, *self._churn):
            old = previous.get(new.name)
            if old is None or old.identity() != new.identity():
                continue
            kept.add(new.name)
            self._adopt(old, new)
        for name, old in previous.items():
            if name not in kept:
                for alert in self._alerts_of(old):
                    self._retire(alert, "rule removed or changed")

    def _alerts_of(self, rt: _Runtime) -> list[Alert]:
        if isinstance(rt, _DropRuntime):
            return [s.alert for s in rt.scopes.values() if s.alert is not None]
        if isinstance(rt, _SurgeRuntime):
            return [a for s in rt.scopes.values() for a in s.alerts.values()]
        assert isinstance(rt, _ChurnRuntime)
        return [c.alert for c in rt.customers.values() if c.alert is not None]

    def _retire(self, alert: Alert, reason: str) -> None:
        self._retiring.append((alert, reason))

    def _adopt(self, old: _Runtime, new: _Runtime) -> None:
        if isinstance(old, _DropRuntime) and isinstance(new, _DropRuntime):
            for (names, key), scope in old.scopes.items():
                if names not in new.levels:
                    if scope.alert is not None:
                        self._retire(scope.alert, "scope removed")
                    continue
                eff = new.eff(scope.labels)
                if not eff.enabled:
                    if scope.alert is not None:
                        self._retire(scope.alert, "rule disabled for scope")
                    continue
                if eff.config != scope.eff.config:
                    scope.state = _rederive(eff.config, scope.state)  # type: ignore[arg-type]
                scope.eff = eff
                scope.enabled = eff.enabled
                new.put(names, key, scope)
                if scope.alert is not None:
                    new.alerting[id(scope)] = scope
        elif isinstance(old, _SurgeRuntime) and isinstance(new, _SurgeRuntime):
            for (names, key), sscope in old.scopes.items():
                eff = new.eff(sscope.labels)
                if names not in new.levels or not eff.enabled:
                    for alert in sscope.alerts.values():
                        self._retire(alert, "scope removed or disabled")
                    continue
                cfg: surge.SurgeConfig = eff.config  # type: ignore[assignment]
                if cfg.window != sscope.eff.config.window:  # type: ignore[union-attr]
                    sscope.state = surge.new_state()  # windows are aligned to the window length
                sscope.eff = eff
                new.put(names, key, sscope)
                self._note_close(new, sscope)
        elif isinstance(old, _ChurnRuntime) and isinstance(new, _ChurnRuntime):
            new.customers = old.customers
            new.alerting = old.alerting
            for cust in new.customers.values():
                cust.config = None

    # ---------------------------------------------------------------- aggregate drop

    def _new_drop_scope(self, rt: _DropRuntime, names: tuple[str, ...], key: tuple[str, ...],
                        now: datetime) -> _DropScope:
        labels = dict(zip(names, key, strict=True))
        eff = rt.eff(labels)
        scope = _DropScope(labels=labels, eff=eff, state=drop.new_state(eff.config),  # type: ignore[arg-type]
                           enabled=eff.enabled, last_at=now)
        rt.put(names, key, scope)
        return scope

    def _flush_drop(self, rt: _DropRuntime, scope: _DropScope, now: datetime, out: list[Alert]) -> None:
        cfg: drop.DropConfig = scope.eff.config  # type: ignore[assignment]
        buf, scope.buf = scope.buf, []
        scope.last_at = now
        self._dirty_drop.pop(id(scope), None)
        state, decisions = drop.update(cfg, scope.state, buf)
        scope.state = state
        scope.hot = state.active and state.s > HOT_FRACTION * state.h
        for d in decisions:
            scope.last_alarm_n = d.position
            scope.last_alarm_at = now
            if scope.alert is None:
                alert = self._drop_alert(rt, scope, d, now)
                scope.alert = alert
                scope.realarms = 0
                rt.alerting[id(scope)] = scope
                self._firing[alert.fingerprint] = alert
                out.append(alert)
            else:
                scope.realarms += 1
        if scope.alert is not None and self._drop_clear(rt, scope, now):
            self._resolve_drop(rt, scope, now, out)

    def _drop_clear(self, rt: _DropRuntime, scope: _DropScope, now: datetime) -> bool:
        res = rt.rule.resolve
        st = scope.state
        if scope.buf:  # not yet evaluated
            return False
        quiet = st.n_seen - scope.last_alarm_n >= res.quiet_n or (
            scope.last_alarm_at is not None and now - scope.last_alarm_at >= res.quiet_for
        )
        return quiet and st.s <= res.reset_fraction * st.h

    def _resolve_drop(self, rt: _DropRuntime, scope: _DropScope, now: datetime, out: list[Alert]) -> None:
        alert = scope.alert
        assert alert is not None
        scope.alert = None
        rt.alerting.pop(id(scope), None)
        self._firing.pop(alert.fingerprint, None)
        cfg: drop.DropConfig = scope.eff.config  # type: ignore[assignment]
        base = drop.baseline_value(cfg, scope.state)
        out.append(_resolved(
            alert, now, "condition cleared",
            responses_since_last_alarm=float(scope.state.n_seen - scope.last_alarm_n),
            realarms_while_firing=float(scope.realarms),
            cusum_at_resolution=round(scope.state.s, 6),
            **({"baseline_at_resolution": base} if base is not None else {}),
        ))

    def _drop_alert(self, rt: _DropRuntime, scope: _DropScope, d: Decision, now: datetime) -> Alert:
        rule = rt.rule
        fp = fingerprint(rule.name, scope.labels)
        sev = scope.eff.severity
        labels = {**scope.labels, "rule": rule.name, "kind": AlertKind.aggregate_drop.value,
                  "severity": sev.value, "metric": rule.metric}
        fields = d.evidence_fields()
        fields["metric"] = rule.metric
        fields["details"] = {**fields["details"], "detector_rule": d.rule,
                             "scope": ",".join(f"{k}={v}" for k, v in scope.labels.items())}
        evidence = AlertEvidence(**fields)
        summary = (
            f"{rule.metric} at {_scope_text(scope.labels)} dropped: {_fmt(d.metric, d.observed)} "
            f"vs baseline {_fmt(d.metric, d.baseline)} (n={d.n}, baseline n={d.baseline_n}"
            f"{_fmt_change(d.metric, d.interval_low, d.interval_high)})"
        )
        return Alert(alert_id=alert_id(fp, now), fingerprint=fp, kind=AlertKind.aggregate_drop,
                     rule=rule.name, detector_version=d.detector_version, severity=sev,
                     status=AlertStatus.firing, labels=labels, summary=summary, evidence=evidence,
                     starts_at=now)

    # ---------------------------------------------------------------- theme surge

    def _new_surge_scope(self, rt: _SurgeRuntime, names: tuple[str, ...], key: tuple[str, ...],
                         now: datetime) -> _SurgeScope:
        labels = dict(zip(names, key, strict=True))
        scope = _SurgeScope(labels=labels, eff=rt.eff(labels), state=surge.new_state(), last_at=now)
        rt.put(names, key, scope)
        return scope

    def _note_close(self, rt: _SurgeRuntime, scope: _SurgeScope) -> None:
        cur = scope.state.current
        if cur is not None:
            end = cur.start + scope.eff.config.window  # type: ignore[union-attr]
            if rt.next_close is None or end < rt.next_close:
                rt.next_close = end

    def _flush_surge(self, rt: _SurgeRuntime, scope: _SurgeScope, until: datetime | None,
                     now: datetime, out: list[Alert]) -> None:
        cfg: surge.SurgeConfig = scope.eff.config  # type: ignore[assignment]
        buf, scope.buf = scope.buf, []
        if buf:
            scope.last_at = now
        self._dirty_surge.pop(id(scope), None)
        before = scope.state.current.start if scope.state.current is not None else None
        state, decisions = surge.update(cfg, scope.state, buf, until)
        scope.state = state
        after = state.current.start if state.current is not None else None
        self._note_close(rt, scope)
        closed = before is not None and after != before
        if not decisions and not closed:
            return
        by_end: dict[datetime, list[Decision]] = {}
        for d in decisions:
            assert d.window_end is not None
            by_end.setdefault(d.window_end, []).append(d)
        ends = sorted(by_end)
        for end in ends:
            self._apply_surge_window(rt, scope, by_end[end], now, out)
        if closed and (not ends or (after is not None and ends[-1] < after)):
            self._apply_surge_window(rt, scope, [], now, out)

    def _apply_surge_window(self, rt: _SurgeRuntime, scope: _SurgeScope, decisions: list[Decision],
                            now: datetime, out: list[Alert]) -> None:
        surging = {str(d.subject): d for d in decisions}
        for theme in [t for t in scope.alerts if t not in surging]:
            alert = scope.alerts.pop(theme)
            self._firing.pop(alert.fingerprint, None)
            out.append(_resolved(alert, now, "window closed without surge"))
        for theme, d in surging.items():
            if theme in scope.alerts:
                continue
            alert = self._surge_alert(rt, scope, theme, d, now)
            scope.alerts[theme] = alert
            self._firing[alert.fingerprint] = alert
            out.append(alert)

    def _surge_alert(self, rt: _SurgeRuntime, scope: _SurgeScope, theme: str, d: Decision,
                     now: datetime) -> Alert:
        rule = rt.rule
        ident = {**scope.labels, "theme": theme}
        fp = fingerprint(rule.name, ident)
        sev = scope.eff.severity
        labels = {**ident, "rule": rule.name, "kind": AlertKind.theme_surge.value, "severity": sev.value}
        fields = d.evidence_fields()
        fields["details"] = {**fields["details"], "detector_rule": d.rule,
                             "scope": ",".join(f"{k}={v}" for k, v in scope.labels.items())}
        summary = (
            f"theme '{theme}' surging at {_scope_text(scope.labels)}: {_fmt(d.metric, d.observed)} of "
            f"negative comments vs {_fmt(d.metric, d.baseline)} normally (n={d.n}, baseline n="
            f"{d.baseline_n}{_fmt_change(d.metric, d.interval_low, d.interval_high)})"
        )
        return Alert(alert_id=alert_id(fp, now), fingerprint=fp, kind=AlertKind.theme_surge,
                     rule=rule.name, detector_version=d.detector_version, severity=sev,
                     status=AlertStatus.firing, labels=labels, summary=summary,
                     evidence=AlertEvidence(**fields), starts_at=now)

    # ---------------------------------------------------------------- churn risk

    def _on_churn(self, scored: ScoredEvent, now: datetime, out: list[Alert]) -> None:
        ev = scored.event
        category = scored.nps_category
        text = scored.text
        negative = (
            category is NpsCategory.detractor
            or scored.complaint
            or (text is not None and text.sentiment_label is SentimentLabel.negative)
        )
        promoter = category is NpsCategory.promoter
        intent = scored.churn_intent
        for rt in self._churn:
            csat_negative = scored.csat is not None and scored.csat <= rt.rule.negative_csat_at_most
            neg = negative or csat_negative
            cid = ev.customer_id
            if cid is None:
                if not (rt.intent and intent and neg):
                    continue
                cid = f"event:{ev.event_id}"
            cust = rt.customers.get(cid)
            if cust is not None and cust.alert is not None and promoter and not neg \
                    and rt.rule.resolve.on_promoter:
                self._resolve_churn(rt, cid, cust, now, "promoter", out)
                continue
            if not (neg or intent):
                continue  # nothing the detector would count (exact: it only keeps negatives)
            labels = {"touchpoint": ev.touchpoint.value, "unit": ev.unit, "segment": ev.segment,
                      "source": ev.source, "customer_id": cid}
            eff = rt.eff(labels)
            if not eff.enabled:
                continue
            if cust is None:
                cust = rt.customers[cid] = _Customer(state=churn.new_state(cid))
            cfg: churn.ChurnConfig = eff.config  # type: ignore[assignment]
            cust.config = cfg
            detractor = None if category is None else category is NpsCategory.detractor
            cev = churn.CustomerEvent(ev.event_id or "", ev.occurred_at, cid, ev.touchpoint.value,
                                      neg, intent, detractor)
            cust.state, decisions = churn.update(cfg, cust.state, cev)
            if neg:
                cust.last_negative_at = now
            decisions = [d for d in decisions
                         if (d.rule == churn.RULE_INTENT and rt.intent)
                         or (d.rule == churn.RULE_REPEATED and rt.repeated)]
            if decisions and cust.alert is None:
                alert = self._churn_alert(rt, labels, eff.severity, decisions, scored, now)
                cust.alert = alert
                cust.last_negative_at = now
                rt.alerting[cid] = cust
                self._firing[alert.fingerprint] = alert
                out.append(alert)

    def _resolve_churn(self, rt: _ChurnRuntime, cid: str, cust: _Customer, now: datetime,
                       reason: str, out: list[Alert]) -> None:
        alert = cust.alert
        assert alert is not None
        cust.alert = None
        rt.alerting.pop(cid, None)
        self._firing.pop(alert.fingerprint, None)
        out.append(_resolved(alert, now, reason))

    def _churn_alert(self, rt: _ChurnRuntime, labels: dict[str, str], sev: Severity,
                     decisions: list[Decision], scored: ScoredEvent, now: datetime) -> Alert:
        rule = rt.rule
        d = decisions[0]
        cid = labels["customer_id"]
        fp = fingerprint(rule.name, {"customer_id": cid})
        signals = ",".join("intent" if x.rule == churn.RULE_INTENT else "repeated" for x in decisions)
        alert_labels = {k: v for k, v in labels.items() if k != "source"}
        alert_labels.update({"rule": rule.name, "kind": AlertKind.churn_risk.value,
                             "severity": sev.value, "signal": signals})
        fields = d.evidence_fields()
        ids = list(fields["example_event_ids"])
        for x in decisions[1:]:
            ids += [e for e in x.example_event_ids if e not in ids]
        fields["example_event_ids"] = ids[:20]
        fields["details"] = {**fields["details"], "detector_rule": d.rule, "signals": signals}
        if scored.nps is not None:
            fields["details"]["nps"] = float(scored.nps)
        ev = scored.event
        if d.rule == churn.RULE_INTENT:
            why = f"scored NPS {scored.nps if scored.nps is not None else 'n/a'} and states an intent to leave"
        else:
            why = (f"had {d.n} negative experiences across {d.details.get('touchpoints', '')} "
                   f"within {d.details.get('window_days', 0):g} days")
        summary = f"customer {cid} at {ev.touchpoint.value}/{ev.unit} at risk of churning: {why}"
        return Alert(alert_id=alert_id(fp, now), fingerprint=fp, kind=AlertKind.churn_risk,
                     rule=rule.name, detector_version=d.detector_version, severity=sev,
                     status=AlertStatus.firing, labels=alert_labels, summary=summary,
                     evidence=AlertEvidence(**fields), starts_at=now)

    # ---------------------------------------------------------------- housekeeping

    def _sweep_step(self, now: datetime) -> None:
        """Idle-state eviction, a bounded slice per tick (a full pass at most every SWEEP_EVERY)."""
        self._sweep_now = now
        if self._sweeper is None:
            if self._last_sweep is not None and now - self._last_sweep < SWEEP_EVERY:
                return
            self._last_sweep = now
            self._sweeper = self._sweep()
        if next(self._sweeper, StopIteration) is StopIteration:
            self._sweeper = None

    def _sweep(self) -> Iterator[None]:
        """Evict per-scope/per-customer state that carries nothing any more; yields every
        SWEEP_SLICE entries so one tick never walks millions of customers."""
        done = 0
        now = self._sweep_now
        assert now is not None
        for rt3 in list(self._churn):
            for cid in list(rt3.customers):
                done += 1
                if done % SWEEP_SLICE == 0:
                    yield
                cust = rt3.customers.get(cid)
                if cust is None or cust.alert is not None:
                    continue
                cfg = cust.config or rt3.base_eff.config
                if churn.is_idle(cfg, cust.state, now):  # type: ignore[arg-type]
                    del rt3.customers[cid]
        for rt in list(self._drop):
            for k in list(rt.scopes):
                done += 1
                if done % SWEEP_SLICE == 0:
                    yield
                s = rt.scopes.get(k)
                if s is not None and s.alert is None and not s.buf and s.last_at is not None \
                        and now - s.last_at >= DROP_EVICT_AFTER:
                    rt.remove(*k)
        for rt2 in list(self._surge):
            for k in list(rt2.scopes):
                done += 1
                if done % SWEEP_SLICE == 0:
                    yield
                s2 = rt2.scopes.get(k)
                if s2 is None or s2.alerts or s2.buf or s2.last_at is None:
                    continue
                cfg2: surge.SurgeConfig = s2.eff.config  # type: ignore[assignment]
                if now - s2.last_at >= cfg2.window * (cfg2.baseline_windows + 2):
                    rt2.remove(*k)

    # ---------------------------------------------------------------- restart

    def restore_firing(self, alerts: Iterable[Alert], now: datetime) -> int:
        """Alerts that were firing before a restart (the service takes them from the cases):
        they are firing again here, so their condition is not alerted as new and resolves
        once when it clears. Detector state itself starts afresh (baselines are relearned), so
        clearing is judged on what comes after ``now``: a drop resolves after its quiet period,
        a churn risk after ``resolve.quiet_for`` without a negative experience (or a promoter),
        a surge when the scope's next window closes without it. Returns how many were taken."""
        by_name = {rt.name: rt for rt in (*self._drop, *self._surge, *self._churn)}
        taken = 0
        for alert in alerts:
            rt = by_name.get(alert.rule)
            if rt is None or alert.status is not AlertStatus.firing or alert.fingerprint in self._firing:
                continue
            if self._adopt_alert(rt, alert, now):
                self._firing[alert.fingerprint] = alert
                taken += 1
        return taken

    def _adopt_alert(self, rt: _Runtime, alert: Alert, now: datetime) -> bool:
        labels = alert.labels
        if isinstance(rt, _ChurnRuntime):
            cid = labels.get("customer_id")
            if not cid:
                return False
            cust = rt.customers.setdefault(cid, _Customer(state=churn.new_state(cid)))
            cust.alert, cust.last_negative_at = alert, now
            rt.alerting[cid] = cust
            return True
        present = {k for k in SCOPE_LABELS if k in labels}
        names = next((n for n in rt.levels if set(n) == present), None)
        if names is None:
            return False
        key = tuple(labels[n] for n in names)
        if isinstance(rt, _DropRuntime):
            scope = rt.tables[names].get(key) or self._new_drop_scope(rt, names, key, now)
            scope.alert, scope.realarms = alert, 0
            scope.last_alarm_n, scope.last_alarm_at = scope.state.n_seen, now
            rt.alerting[id(scope)] = scope
            return True
        assert isinstance(rt, _SurgeRuntime)
        theme = labels.get("theme")
        if not theme:
            return False
        sscope = rt.tables[names].get(key) or self._new_surge_scope(rt, names, key, now)
        sscope.alerts[theme] = alert
        return True

    def evict(self, keep_scope: Callable[[tuple[str, ...], tuple[str, ...]], bool],
              keep_customer: Callable[[str], bool]) -> int:
        """Forget the scopes (level names, label values) and customers this evaluator no longer
        sees the events of (a rebalance gave their partitions to another worker): detector
        state, buffered observations and firing alerts, emitting nothing. The new owner takes
        the firing alerts over from the cases (restore_firing); were they kept here, a later
        rebalance back would bring stale state that alerts the same condition again."""
        dropped = 0
        runtimes: list[_DropRuntime | _SurgeRuntime] = [*self._drop, *self._surge]
        for rt in runtimes:
            for names, key in [k for k in rt.scopes if not keep_scope(*k)]:
                self._forget_scope(rt, rt.scopes[(names, key)])
                rt.remove(names, key)
                dropped += 1
        for rt3 in self._churn:
            for cid in [c for c in rt3.customers if not keep_customer(c)]:
                cust = rt3.customers.pop(cid)
                rt3.alerting.pop(cid, None)
                if cust.alert is not None:
                    self._firing.pop(cust.alert.fingerprint, None)
                dropped += 1
        return dropped

    def _forget_scope(self, rt: _Runtime, scope: _DropScope | _SurgeScope) -> None:
        if isinstance(scope, _DropScope):
            alerts = [scope.alert] if scope.alert is not None else []
            self._dirty_drop.pop(id(scope), None)
            rt.alerting.pop(id(scope), None)  # type: ignore[attr-defined]
        else:
            alerts = list(scope.alerts.values())
            self._dirty_surge.pop(id(scope), None)
        for alert in alerts:
            self._firing.pop(alert.fingerprint, None)

    def stats(self) -> dict[str, int]:
        """Sizes of the kept state (for metrics and tests)."""
        return {
            "drop_scopes": sum(len(rt.scopes) for rt in self._drop),
            "surge_scopes": sum(len(rt.scopes) for rt in self._surge),
            "customers": sum(len(rt.customers) for rt in self._churn),
            "firing": len(self._firing),
        }


def _rederive(config: drop.DropConfig, state: drop.DropState) -> drop.DropState:
    """Keep a learned baseline under a changed configuration: the CUSUM weights and threshold
    are re-derived from the baseline counts (they depend on shift, arl0, ...)."""
    st = state.copy()
    if st.active:
        derive = getattr(drop, "_derive", None)
        if derive is None:  # the detector changed its internals: start learning again
            return drop.new_state(config)
        st.weights, st.h = derive(config, st)
        if st.s > st.h:
            st.s = 0.0
    return st


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
