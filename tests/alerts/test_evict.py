"""Specification of `AlertEvaluator.evict`: what a worker forgets when a rebalance gives the
partitions of some scopes and customers to another worker.

Forgotten: detector state, buffered observations and firing alerts of every scope and customer
not kept -- silently (the new owner takes the firing alerts over from the cases, so nothing is
resolved here). Everything kept is untouched.
"""

from __future__ import annotations

import random
from datetime import timedelta

from schemas.alert import Alert, AlertKind, AlertStatus
from services.alerts.flows import AlertEvaluator
from tests.alerts.test_flows import (
    CHURN_RULES,
    DROP_RULES,
    DROPPED,
    IN_CONTROL,
    T0,
    nps_stream,
    rules_yaml,
    run,
    scored,
)

SCOPE = ("touchpoint", "unit", "segment")
UNIT = ("touchpoint", "unit")


def drop_firing() -> tuple[AlertEvaluator, list[Alert]]:
    """An evaluator with a drop firing at both scope levels of store/berlin-mitte/private."""
    ev = AlertEvaluator(rules_yaml(DROP_RULES))
    rng = random.Random(7)
    fired = run(ev, nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500))
    assert {tuple(a.labels.get(k) for k in SCOPE) for a in fired} == {
        ("store", "berlin-mitte", "private"), ("store", "berlin-mitte", None)}
    return ev, fired


def recovery(start: int = 2000) -> list:  # type: ignore[type-arg]
    return nps_stream(random.Random(8), IN_CONTROL, 2500, start)


class TestEvictScopes:
    def test_forgets_the_scopes_not_kept_with_their_firing_alerts_and_emits_nothing(self) -> None:
        ev, _ = drop_firing()
        assert ev.evict(lambda names, key: False, lambda cid: True) == 2
        assert ev.firing() == []
        assert ev.stats() == {"drop_scopes": 0, "surge_scopes": 0, "customers": 0, "firing": 0}
        # the drop is over: the new owner resolves it, this worker says nothing about it
        later = recovery()
        assert run(ev, later) == []
        assert ev.on_tick(later[-1].event.occurred_at + timedelta(days=60)) == []

    def test_is_asked_per_scope_with_level_names_and_label_values(self) -> None:
        ev, _ = drop_firing()
        asked: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        ev.evict(lambda names, key: asked.append((names, key)) or True, lambda cid: True)
        assert sorted(asked) == [(UNIT, ("store", "berlin-mitte")),
                                 (SCOPE, ("store", "berlin-mitte", "private"))]

    def test_keeps_what_is_kept_untouched(self) -> None:
        ev, fired = drop_firing()
        kept = next(a for a in fired if "segment" not in a.labels)
        assert ev.evict(lambda names, key: names == UNIT, lambda cid: True) == 1
        assert [a.alert_id for a in ev.firing()] == [kept.alert_id]
        assert ev.stats()["drop_scopes"] == 1
        # the kept scope's detector state goes on: its drop clears and resolves once, while
        # the evicted scope relearns its baseline and raises nothing new
        alerts = run(ev, recovery())
        assert [(a.alert_id, a.status) for a in alerts] == [(kept.alert_id, AlertStatus.resolved)]

    def test_buffered_observations_go_with_the_scope(self) -> None:
        # a batch larger than the stream: every observation still waits in the scope's buffer
        ev = AlertEvaluator(rules_yaml(DROP_RULES), batch_size=100_000)
        rng = random.Random(7)
        for s in nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500):
            assert ev.on_scored(s, s.event.occurred_at) == []
        ev.evict(lambda names, key: False, lambda cid: True)
        # were they still queued for the detector, flushing now would raise the drop
        assert ev.flush(T0 + timedelta(days=10)) == []
        assert ev.on_tick(T0 + timedelta(days=10)) == []
        assert ev.stats()["drop_scopes"] == 0


class TestEvictCustomers:
    def test_forgets_the_customers_not_kept_with_their_firing_alerts(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        [c1] = ev.on_scored(scored(1, T0, nps=0, customer="c-1", churn_intent=True), T0)
        [c2] = ev.on_scored(scored(2, T0, nps=0, customer="c-2", churn_intent=True), T0)
        assert c1.kind is AlertKind.churn_risk
        assert ev.evict(lambda names, key: True, lambda cid: cid == "c-2") == 1
        assert [a.alert_id for a in ev.firing()] == [c2.alert_id]
        assert ev.stats()["customers"] == 1
        # a promoter answer of the evicted customer resolves nothing here; the kept one's does
        t = T0 + timedelta(days=1)
        assert ev.on_scored(scored(3, t, nps=10, customer="c-1"), t) == []
        [resolved] = ev.on_scored(scored(4, t, nps=10, customer="c-2"), t)
        assert resolved.alert_id == c2.alert_id and resolved.status is AlertStatus.resolved
        # nor does the quiet window
        assert ev.on_tick(T0 + timedelta(days=60)) == []

    def test_an_evicted_then_restored_alert_is_not_raised_again(self) -> None:
        """A rebalance back: the alert comes back through restore_firing, not as a new one."""
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        [fired] = ev.on_scored(scored(1, T0, nps=0, customer="c-1", churn_intent=True), T0)
        ev.evict(lambda names, key: True, lambda cid: False)
        t = T0 + timedelta(hours=1)
        assert ev.restore_firing([fired], t) == 1
        assert ev.on_scored(scored(2, t, nps=0, customer="c-1", churn_intent=True), t) == []
        assert [a.alert_id for a in ev.firing()] == [fired.alert_id]
