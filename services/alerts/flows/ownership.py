"""Who holds which state: firing alerts taken over after a restart or a rebalance
(:func:`restore_firing`), and the scopes and customers of partitions given away (:func:`evict`).

Restored alerts are firing again here, so their condition is not alerted as new and resolves
once when it clears. Drop detectors get their learned state back from snapshots first
(:mod:`.snapshots`, when the state topic has one); churn and surge state starts afresh. Clearing
is judged on what comes after ``now``: a drop resolves after its quiet period, a churn risk
after ``resolve.quiet_for`` without a negative experience (or a promoter), a surge when the
scope's next window closes without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from schemas.alert import Alert, AlertStatus
from services.alerts.detectors import churn
from services.alerts.flows.drops import new_drop_scope
from services.alerts.flows.state import (
    ChurnRuntime,
    Customer,
    DropRuntime,
    DropScope,
    Ledger,
    Runtime,
    SurgeRuntime,
    SurgeScope,
)
from services.alerts.flows.surges import new_surge_scope
from services.alerts.rules.models import SCOPE_LABELS


def restore_firing(book: Ledger, runtimes: Iterable[Runtime], alerts: Iterable[Alert],
                   now: datetime) -> int:
    """Take over the firing alerts of rules that are still here; returns how many."""
    by_name = {rt.name: rt for rt in runtimes}
    taken = 0
    for alert in alerts:
        rt = by_name.get(alert.rule)
        if rt is None or alert.status is not AlertStatus.firing or alert.fingerprint in book.firing:
            continue
        if _adopt_alert(rt, alert, now):
            book.firing[alert.fingerprint] = alert
            taken += 1
    return taken


def _adopt_alert(rt: Runtime, alert: Alert, now: datetime) -> bool:
    """Attach the alert to the state that would have raised it (False: no such state)."""
    labels = alert.labels
    if isinstance(rt, ChurnRuntime):
        return _adopt_churn(rt, alert, now)
    present = {k for k in SCOPE_LABELS if k in labels}
    names = next((n for n in rt.levels if set(n) == present), None)
    if names is None:
        return False
    key = tuple(labels[n] for n in names)
    if isinstance(rt, DropRuntime):
        scope = rt.tables[names].get(key) or new_drop_scope(rt, names, key, now)
        scope.alert, scope.realarms = alert, 0
        scope.last_alarm_n, scope.last_alarm_at = scope.state.n_seen, now
        rt.alerting[id(scope)] = scope
        return True
    assert isinstance(rt, SurgeRuntime)
    theme = labels.get("theme")
    if not theme:
        return False
    sscope = rt.tables[names].get(key) or new_surge_scope(rt, names, key, now)
    sscope.alerts[theme] = alert
    return True


def _adopt_churn(rt: ChurnRuntime, alert: Alert, now: datetime) -> bool:
    cid = alert.labels.get("customer_id")
    if not cid:
        return False
    cust = rt.customers.setdefault(cid, Customer(state=churn.new_state(cid)))
    # a restored churn history knows the last negative experience; else the quiet period starts now
    cust.alert, cust.last_negative_at = alert, cust.last_negative_at or now
    rt.alerting[cid] = cust
    return True


def evict(book: Ledger, scoped: Iterable[DropRuntime | SurgeRuntime], customers: Iterable[ChurnRuntime],
          keep_scope: Callable[[tuple[str, ...], tuple[str, ...]], bool],
          keep_customer: Callable[[str], bool]) -> int:
    """Forget the scopes and customers not kept, with their buffers and firing alerts, emitting
    nothing; returns how many."""
    dropped = 0
    for rt in scoped:
        for names, key in [k for k in rt.scopes if not keep_scope(*k)]:
            _forget_scope(book, rt, rt.scopes[(names, key)])
            rt.remove(names, key)
            dropped += 1
    for rt3 in customers:
        for cid in [c for c in rt3.customers if not keep_customer(c)]:
            cust = rt3.customers.pop(cid)
            rt3.alerting.pop(cid, None)
            if cust.alert is not None:
                book.firing.pop(cust.alert.fingerprint, None)
            dropped += 1
    return dropped


def _forget_scope(book: Ledger, rt: DropRuntime | SurgeRuntime, scope: DropScope | SurgeScope) -> None:
    if isinstance(scope, DropScope):
        alerts = [scope.alert] if scope.alert is not None else []
        book.dirty_drop.pop(id(scope), None)
        rt.alerting.pop(id(scope), None)  # type: ignore[union-attr]
    else:
        alerts = list(scope.alerts.values())
        book.dirty_surge.pop(id(scope), None)
    for alert in alerts:
        book.firing.pop(alert.fingerprint, None)
