"""Specification of the key -> partition routing of handed-over state
(`services.alerts.handover.alert_route`, and `partition_for`, which places repartition records).

On a rebalance a worker takes over the firing alerts of the partitions it gained. That is only
right if an alert is routed to the very partition the events that raised it go to: the key
`repartition.routes` gives those events, partitioned as Kafka's default partitioner does.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.alert import Alert, AlertKind, AlertStatus
from schemas.scored import ScoredEvent
from services.alerts.flows import AlertEvaluator
from services.alerts.handover import alert_route
from services.alerts.repartition import customer_key, routes
from services.alerts.rules.models import SCOPE_LABELS
from services.common.partitioner import partition_for
from tests.alerts.test_flows import DROPPED, IN_CONTROL, T0, nps_stream, rules_yaml, run, scored
from tests.alerts.test_repartition import RULES

#: Kafka's own murmur2 test vectors (org.apache.kafka.common.utils.UtilsTest), signed 32 bit.
KAFKA_MURMUR2 = [
    ("21", -973932308),
    ("foobar", -790332482),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    ("abc", 479470107),
]


class TestPartitionOf:
    @pytest.mark.parametrize("partitions", [1, 3, 12, 100])
    @pytest.mark.parametrize(("key", "java_hash"), KAFKA_MURMUR2)
    def test_is_the_partition_kafkas_default_partitioner_picks(self, key: str, java_hash: int,
                                                               partitions: int) -> None:
        # Java: Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions
        assert partition_for(key.encode(), partitions) == (java_hash & 0x7FFFFFFF) % partitions

    @given(key=st.binary(max_size=200), partitions=st.integers(1, 1000))
    def test_is_a_partition_of_the_topic(self, key: bytes, partitions: int) -> None:
        assert 0 <= partition_for(key, partitions) < partitions


def _raised_by(alert: Alert, s: ScoredEvent) -> bool:
    """Whether `s` is an event of the scope or customer that `alert` is about."""
    if alert.kind is AlertKind.churn_risk:
        return s.event.customer_id == alert.labels["customer_id"]
    ev = s.event
    vals = dict(zip(SCOPE_LABELS, (ev.touchpoint.value, ev.unit, ev.segment, ev.source), strict=True))
    return all(alert.labels[k] == vals[k] for k in SCOPE_LABELS if k in alert.labels)


@pytest.fixture(scope="module")
def raised() -> tuple[AlertEvaluator, list[ScoredEvent], list[Alert]]:
    """A drop at three scope levels of one unit, and a customer with repeated bad experiences."""
    rng = random.Random(7)
    events = nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500)
    events += [scored(f"c{i}", events[1500 + i].event.occurred_at, nps=1,
                      customer="c-9", touchpoint=tp, unit="hamburg")
               for i, tp in enumerate(["web", "app", "store"])]
    events.sort(key=lambda s: s.event.occurred_at)
    ev = AlertEvaluator(rules_yaml(RULES))
    alerts = [a for a in run(ev, events) if a.status is AlertStatus.firing]
    assert {a.kind for a in alerts} == {AlertKind.aggregate_drop, AlertKind.churn_risk}
    assert len(alerts) == 4  # three scope levels of berlin-mitte, one customer
    return ev, events, alerts


class TestAlertRoute:
    def test_routes_an_alert_where_the_events_that_raised_it_go(self, raised) -> None:  # type: ignore[no-untyped-def]
        ev, events, alerts = raised
        levels = ev.scope_levels()
        for alert in alerts:
            route = alert_route(alert, levels)
            by = [s for s in events if _raised_by(alert, s)]
            assert by and route is not None
            assert all(route in routes(s, levels) for s in by), alert.labels

    def test_two_scope_levels_of_one_unit_are_two_routes(self, raised) -> None:  # type: ignore[no-untyped-def]
        ev, _, alerts = raised
        keys = [alert_route(a, ev.scope_levels()) for a in alerts]
        assert len(set(keys)) == len(keys)

    def test_an_anonymous_customer_routes_by_its_event(self) -> None:
        s = scored(5, T0, nps=0, churn_intent=True)
        [alert] = AlertEvaluator(rules_yaml(RULES)).on_scored(s, T0)
        assert alert.labels["customer_id"] == "event:e-5"
        assert alert_route(alert, []) == ("customer", customer_key(s))

    def test_a_surge_routes_by_its_scope_not_its_theme(self, raised) -> None:  # type: ignore[no-untyped-def]
        ev, _, alerts = raised
        drop = next(a for a in alerts if a.kind is AlertKind.aggregate_drop)
        surge = drop.model_copy(update={"kind": AlertKind.theme_surge,
                                        "labels": {**drop.labels, "theme": "billing"}})
        assert alert_route(surge, ev.scope_levels()) == alert_route(drop, ev.scope_levels())

    def test_no_route_when_no_rule_keeps_state_at_the_alerts_level(self, raised) -> None:  # type: ignore[no-untyped-def]
        ev, _, alerts = raised
        drop = next(a for a in alerts if a.kind is AlertKind.aggregate_drop and "segment" in a.labels)
        others = [lv for lv in ev.scope_levels() if "segment" not in lv]
        assert alert_route(drop, others) is None

    def test_no_route_for_a_churn_alert_without_a_customer(self, raised) -> None:  # type: ignore[no-untyped-def]
        _, _, alerts = raised
        churn = next(a for a in alerts if a.kind is AlertKind.churn_risk)
        labels = {k: v for k, v in churn.labels.items() if k != "customer_id"}
        assert alert_route(churn.model_copy(update={"labels": labels}), []) is None
