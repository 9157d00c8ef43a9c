"""Specification of the scale-out of detection (`services.alerts.repartition`).

Several alerts workers must give the alerts one worker gives: every scored event is routed,
once per scope level and once per customer, by a key naming that scope or customer; whatever
worker a key lands on, the union of the workers' alerts equals one evaluator's -- the same
alerts, with the same ids. Splitting the stream by event id (the scored topic's key) does not.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.alert import Alert, AlertKind, AlertStatus
from schemas.scored import ScoredEvent
from services.alerts.flows import AlertEvaluator
from services.alerts.repartition import customer_key, level_of, routes, scope_key
from tests.alerts.test_flows import (
    DROPPED,
    IN_CONTROL,
    T0,
    check_lifecycle,
    nps_stream,
    rules_yaml,
    run,
    scored,
)

RULES = """\
    defaults:
      scopes: [[touchpoint, unit, segment], [touchpoint, unit], [touchpoint]]
    rules:
      - name: nps-drop
        kind: aggregate_drop
        metric: nps
        min_n: 30
        params: {shift: 20, warmup_n: 400, block_n: 50, hold_n: 100, arl0: 20000}
        resolve: {quiet_n: 600, quiet_for: 30d, reset_fraction: 0.5}
      - name: churn
        kind: churn_risk
        severity: critical
        params: {window: 30d, min_negative: 3, min_touchpoints: 2, cooldown: 30d}
        resolve: {quiet_for: 14d, on_promoter: true}
    """

NAMES = st.from_regex(r"[A-Za-z0-9_äöüÄÖÜß.\-:/ ]{1,64}", fullmatch=True)  # unit and segment names
LEVELS = [("touchpoint", "unit", "segment"), ("touchpoint", "unit"), ("touchpoint",)]
TICK = timedelta(minutes=10)


def _stream() -> list[ScoredEvent]:
    """Two units (one drops, one does not), and customers whose negative experiences (three
    across two touchpoints: churn risk) or intent to leave are spread through the stream."""
    rng = random.Random(11)
    dropping = (nps_stream(rng, IN_CONTROL, 900, 0, "a", unit="altona")
                + nps_stream(rng, DROPPED, 400, 900, "a", unit="altona"))
    steady = nps_stream(rng, IN_CONTROL, 1300, 0, "b", unit="mitte", segment="business")
    events = sorted(dropping + steady, key=lambda s: s.event.occurred_at)
    for c in range(12):
        for j, touchpoint in enumerate(("web", "store", "web")):
            at = T0 + timedelta(hours=6 * c + j, minutes=1)
            events.append(scored(f"c{c}-{j}", at, touchpoint=touchpoint, nps=2, customer=f"c-{c}",
                                 churn_intent=(c % 4 == 0 and j == 0)))
        if c % 3 == 0:  # a promoter answer later resolves that customer's alert
            events.append(scored(f"c{c}-p", T0 + timedelta(hours=6 * c + 4), nps=10, customer=f"c-{c}"))
    events.append(scored("anon", T0 + timedelta(hours=2), nps=1, churn_intent=True))  # no customer id
    return sorted(events, key=lambda s: s.event.occurred_at)


STREAM = _stream()


def _deliver(worker: AlertEvaluator, route: str, key: bytes, s: ScoredEvent) -> list[Alert]:
    now = s.event.occurred_at
    return worker.on_customer(s, now) if route == "customer" else worker.on_scope(s, level_of(key), now)


def run_workers(n: int, events: Sequence[ScoredEvent], place: Callable[[bytes], int]) -> list[Alert]:
    """The events through `n` workers, each record on the worker `place(key)` names; every
    worker ticks when one evaluator would, and flushes at the end (as `run` does)."""
    workers = [AlertEvaluator(rules_yaml(RULES)) for _ in range(n)]
    out: list[Alert] = []
    last_tick = None
    now = None
    for s in events:
        now = s.event.occurred_at
        for route, key in routes(s, workers[0].scope_levels()):
            out += _deliver(workers[place(key) % n], route, key, s)
        if last_tick is None or now - last_tick >= TICK:
            out += [a for w in workers for a in w.on_tick(now)]
            last_tick = now
    assert now is not None
    return out + [a for w in workers for a in w.flush(now) + w.on_tick(now)]


def ordered(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (a.starts_at, a.ends_at or a.starts_at, a.alert_id, a.status.value))


@pytest.fixture(scope="module")
def one_worker() -> list[Alert]:
    alerts = run(AlertEvaluator(rules_yaml(RULES)), STREAM, tick_every=TICK)
    kinds = {a.kind for a in alerts if a.status is AlertStatus.firing}
    assert kinds == {AlertKind.aggregate_drop, AlertKind.churn_risk}, "the stream must raise both kinds"
    return alerts


class TestRoutes:
    def test_one_route_per_scope_level_and_one_per_customer(self) -> None:
        s = scored(1, T0, touchpoint="web", unit="altona", segment="private", nps=3, customer="c-1")
        assert [(r, level_of(k)) if r == "scope" else (r, k) for r, k in routes(s, LEVELS)] == [
            ("scope", LEVELS[0]), ("scope", LEVELS[1]), ("scope", LEVELS[2]), ("customer", b"c-1")]

    def test_an_anonymous_event_goes_to_the_customers_only_when_it_states_an_intent_to_leave(self) -> None:
        assert customer_key(scored(1, T0, nps=2)) is None
        assert customer_key(scored(2, T0, nps=2, churn_intent=True)) == b"event:e-2"
        assert [r for r, _ in routes(scored(3, T0, nps=2), LEVELS)] == ["scope"] * 3

    @given(NAMES, NAMES, NAMES, NAMES, st.sampled_from([*LEVELS, ()]))
    def test_a_scope_key_depends_on_its_level_and_labels_only(self, unit: str, segment: str,
                                                              other_unit: str, other_segment: str,
                                                              level: tuple[str, ...]) -> None:
        a = scored("a", T0, touchpoint="web", unit=unit, segment=segment, nps=1)
        b = scored("b", T0 + timedelta(days=1), touchpoint="web", unit=other_unit, segment=other_segment, nps=9)
        same = all(a.event.model_dump()[n] == b.event.model_dump()[n] for n in level)
        assert (scope_key(level, a) == scope_key(level, b)) == same
        assert level_of(scope_key(level, a)) == level

    def test_equal_values_at_two_levels_are_two_keys(self) -> None:
        s = scored(1, T0, touchpoint="web", unit="web", nps=1)
        assert scope_key(("touchpoint",), s) != scope_key(("unit",), s)


class TestSeveralWorkers:
    @pytest.mark.parametrize("workers", [2, 3])
    def test_give_exactly_the_alerts_of_one_worker(self, one_worker: list[Alert], workers: int) -> None:
        alerts = run_workers(workers, STREAM, zlib.crc32)
        check_lifecycle(ordered(alerts))
        assert ordered(alerts) == ordered(one_worker)

    @settings(max_examples=8, deadline=None)
    @given(st.randoms(use_true_random=False))
    def test_whatever_worker_each_key_lands_on(self, one_worker: list[Alert], rng: random.Random) -> None:
        placement: dict[bytes, int] = {}
        alerts = run_workers(2, STREAM, lambda key: placement.setdefault(key, rng.randrange(2)))
        assert ordered(alerts) == ordered(one_worker)

    def test_splitting_by_event_id_instead_thins_every_scope_and_customer(self, one_worker: list[Alert]) -> None:
        """The negative control: what the scored topic's own key would give two workers."""
        halves = [[s for s in STREAM if zlib.crc32(s.event_id.encode()) % 2 == w] for w in (0, 1)]
        alerts = [a for half in halves for a in run(AlertEvaluator(rules_yaml(RULES)), half, tick_every=TICK)]
        assert ordered(alerts) != ordered(one_worker)
