"""Aggregate drop per scope: buffered observations through the CUSUM detector, one firing
alert while the drop lasts (re-alarms counted, not re-alerted), resolved when it clears.

Clearing: no new alarm for ``resolve.quiet_n`` responses of the scope or for
``resolve.quiet_for``, and the CUSUM statistic at most ``resolve.reset_fraction`` of its
threshold (the detector restarts the statistic at 0 after an alarm, so a drop that persists
alarms again; one that is over stays quiet).
"""

from __future__ import annotations

from datetime import datetime

from schemas.alert import Alert
from services.alerts.detectors import drop
from services.alerts.detectors.decision import Decision
from services.alerts.flows.evidence import drop_alert, resolved
from services.alerts.flows.state import DropRuntime, DropScope, Ledger

#: A scope whose CUSUM statistic is above this fraction of its threshold is updated per event.
HOT_FRACTION = 0.5


def new_drop_scope(rt: DropRuntime, names: tuple[str, ...], key: tuple[str, ...],
                   now: datetime) -> DropScope:
    labels = dict(zip(names, key, strict=True))
    eff = rt.eff(labels)
    scope = DropScope(labels=labels, eff=eff, state=drop.new_state(eff.config),  # type: ignore[arg-type]
                      enabled=eff.enabled, last_at=now)
    rt.put(names, key, scope)
    return scope


def flush_drop(book: Ledger, rt: DropRuntime, scope: DropScope, now: datetime,
               out: list[Alert]) -> None:
    """Run the scope's buffered observations through the detector and act on its decisions."""
    cfg: drop.DropConfig = scope.eff.config  # type: ignore[assignment]
    buf, scope.buf = scope.buf, []
    scope.last_at = now
    book.dirty_drop.pop(id(scope), None)
    book.changed_drop[id(scope)] = (rt.name, scope)
    state, decisions = drop.update(cfg, scope.state, buf)
    scope.state = state
    scope.hot = state.active and state.s > HOT_FRACTION * state.h
    for d in decisions:
        _on_alarm(book, rt, scope, d, now, out)
    if scope.alert is not None and drop_clear(rt, scope, now):
        resolve_drop(book, rt, scope, now, out)


def _on_alarm(book: Ledger, rt: DropRuntime, scope: DropScope, d: Decision, now: datetime,
              out: list[Alert]) -> None:
    scope.last_alarm_n = d.position
    scope.last_alarm_at = now
    if scope.alert is not None:
        scope.realarms += 1
        return
    alert = drop_alert(rt.rule, scope.labels, scope.eff.severity, d, now)
    scope.alert = alert
    scope.realarms = 0
    rt.alerting[id(scope)] = scope
    book.firing[alert.fingerprint] = alert
    out.append(alert)


def drop_clear(rt: DropRuntime, scope: DropScope, now: datetime) -> bool:
    """Whether the scope's firing drop is over (see the module doc)."""
    res = rt.rule.resolve
    st = scope.state
    if scope.buf:  # not yet evaluated
        return False
    quiet = st.n_seen - scope.last_alarm_n >= res.quiet_n or (
        scope.last_alarm_at is not None and now - scope.last_alarm_at >= res.quiet_for
    )
    return quiet and st.s <= res.reset_fraction * st.h


def resolve_drop(book: Ledger, rt: DropRuntime, scope: DropScope, now: datetime,
                 out: list[Alert]) -> None:
    alert = scope.alert
    assert alert is not None
    scope.alert = None
    rt.alerting.pop(id(scope), None)
    book.firing.pop(alert.fingerprint, None)
    cfg: drop.DropConfig = scope.eff.config  # type: ignore[assignment]
    base = drop.baseline_value(cfg, scope.state)
    out.append(resolved(
        alert, now, "condition cleared",
        responses_since_last_alarm=float(scope.state.n_seen - scope.last_alarm_n),
        realarms_while_firing=float(scope.realarms),
        cusum_at_resolution=round(scope.state.s, 6),
        **({"baseline_at_resolution": base} if base is not None else {}),
    ))


def resolve_cleared(book: Ledger, rt: DropRuntime, now: datetime, out: list[Alert]) -> None:
    """Resolve the rule's firing drops that cleared by time (a tick)."""
    for scope in list(rt.alerting.values()):
        if drop_clear(rt, scope, now):
            resolve_drop(book, rt, scope, now, out)


def rederive(config: drop.DropConfig, state: drop.DropState) -> drop.DropState:
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
