"""Drop-detector snapshots (services/alerts/state/detectors.py, flows/snapshots.py), without a
broker: the encoding round-trips exactly, a restored evaluator decides exactly as the one it was
taken from, and a snapshot never replaces live state, another version's state or another
worker's scopes."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.alert import AlertStatus
from services.alerts.detectors import drop
from services.alerts.flows import AlertEvaluator
from services.alerts.flows.sweep import DROP_EVICT_AFTER
from services.alerts.state.detectors import ChurnSnapshot, DropSnapshot, SurgeSnapshot, snapshot
from services.alerts.state.records import decode, encode
from tests.alerts.test_flows import (
    CHURN_RULES,
    DROP_RULES,
    DROPPED,
    IN_CONTROL,
    SURGE_RULES,
    comment_day,
    nps_stream,
    rules_yaml,
    run,
    scored,
)
from tests.alerts.test_flows import T0 as FLOWS_T0

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SMALL = drop.DropConfig(metric="nps", shift=20, warmup_n=60, block_n=10, hold_n=30, arl0=2000, min_n=5)


def observations(values: list[int], start: int = 0) -> list[drop.Observation]:
    return [drop.Observation(f"e-{start + i}", T0 + timedelta(minutes=start + i), v)
            for i, v in enumerate(values)]


def through_the_topic(record: DropSnapshot) -> DropSnapshot:
    decoded = decode(encode(record))
    assert isinstance(decoded, DropSnapshot)
    return decoded


# ----------------------------------------------------------------------------- encoding


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(0, 10), max_size=400),
       buffered=st.lists(st.integers(0, 10), max_size=40),
       metric=st.sampled_from(["nps", "detractor_share", "top_box", "mean"]))
def test_a_snapshot_round_trips_exactly(values: list[int], buffered: list[int], metric: str) -> None:
    """Whatever the detector has been through (warming up, active, mid-window, after alarms),
    the state read back equals it field for field, and so do the buffered observations."""
    cfg = drop.DropConfig(metric=metric, shift=2.0 if metric == "mean" else 0.2 if metric != "nps" else 20,  # type: ignore[arg-type]
                          warmup_n=60, block_n=10, hold_n=30, arl0=2000, min_n=5)
    state, _ = drop.update(cfg, drop.new_state(cfg), observations(values))
    buf = [(o.event_id, o.at, float(o.value)) for o in observations(buffered, len(values))]
    record = through_the_topic(snapshot("r", ("unit",), ("berlin",), cfg, state, buf, "w1"))
    assert record.drop_state() == state
    assert record.buffered == buf
    assert record.key() == 'detector/drop/r/["unit","berlin"]'


@settings(max_examples=40, deadline=None)
@given(before=st.lists(st.integers(0, 10), min_size=60, max_size=300),
       after=st.lists(st.integers(0, 10), max_size=200))
def test_the_restored_state_decides_as_the_original(before: list[int], after: list[int]) -> None:
    state, _ = drop.update(SMALL, drop.new_state(SMALL), observations(before))
    restored = through_the_topic(snapshot("r", (), (), SMALL, state, [], "w1")).drop_state()
    assert restored is not None
    later = observations(after, len(before))
    assert drop.update(SMALL, restored, later) == drop.update(SMALL, state, later)


# ----------------------------------------------------------------------------- evaluator


def learned_then_dropped(seed: int = 3) -> tuple[list, list]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    return nps_stream(rng, IN_CONTROL, 1000, 0), nps_stream(rng, DROPPED, 300, 1000)


def first_firing(ev: AlertEvaluator, events: list) -> int | None:  # type: ignore[type-arg]
    """How many of `events` the evaluator takes until its first drop alert fires."""
    for i, e in enumerate(events, 1):
        if any(a.status is AlertStatus.firing for a in ev.on_scored(e, e.event.occurred_at)):
            return i
    return None


def test_a_restored_evaluator_detects_the_drop_exactly_when_the_original_does() -> None:
    learn, drop_events = learned_then_dropped()
    original, restored, fresh = (AlertEvaluator(rules_yaml(DROP_RULES)) for _ in range(3))
    for e in learn:
        original.on_scored(e, e.event.occurred_at)
    records = [through_the_topic(r) for r in original.snapshots("w1", buffered=True)]
    assert {tuple(r.level) for r in records} == {("touchpoint", "unit", "segment"), ("touchpoint", "unit")}
    assert restored.restore_snapshots(records, lambda names, key: True, learn[-1].event.occurred_at) == 2
    expected = first_firing(original, drop_events)
    assert expected is not None and expected < 200
    assert first_firing(restored, drop_events) == expected
    assert first_firing(fresh, drop_events[:expected]) is None  # without it: still learning


def test_only_changed_scopes_are_snapshotted_again() -> None:
    learn, _ = learned_then_dropped()
    ev = AlertEvaluator(rules_yaml(DROP_RULES))
    for e in learn:
        ev.on_scored(e, e.event.occurred_at)
    assert len(ev.snapshots("w1")) == 2
    assert ev.snapshots("w1") == []  # nothing ran since
    other = nps_stream(random.Random(1), IN_CONTROL, 40, 5000)
    for e in other:  # 40 events of one scope: one detector run (batch of 32), 8 buffered
        ev.on_scored(e.model_copy(update={"event": e.event.model_copy(update={"segment": "business"})}),
                     e.event.occurred_at)
    assert sorted(r.values for r in ev.snapshots("w1")) == [["store", "berlin-mitte"],
                                                            ["store", "berlin-mitte", "business"]]
    assert ev.snapshots("w1", buffered=True) != []  # their buffers, at a stop or revocation


def test_live_state_and_other_workers_scopes_are_not_replaced() -> None:
    learn, _ = learned_then_dropped()
    ev = AlertEvaluator(rules_yaml(DROP_RULES))
    for e in learn:
        ev.on_scored(e, e.event.occurred_at)
    records = ev.snapshots("w1", buffered=True)
    now = learn[-1].event.occurred_at
    assert ev.restore_snapshots(records, lambda names, key: True, now) == 0  # its own scopes are newer
    other = AlertEvaluator(rules_yaml(DROP_RULES))
    assert other.restore_snapshots(records, lambda names, key: len(names) == 2, now) == 1
    assert other.stats()["drop_scopes"] == 1


def test_a_snapshot_of_another_major_version_is_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    learn, _ = learned_then_dropped()
    ev = AlertEvaluator(rules_yaml(DROP_RULES))
    for e in learn:
        ev.on_scored(e, e.event.occurred_at)
    records = [r.model_copy(update={"detector_version": "detectors-2.0.0"}) for r in ev.snapshots("w1")]
    fresh = AlertEvaluator(rules_yaml(DROP_RULES))
    with caplog.at_level(logging.WARNING, "ksp.alerts.state"):
        assert fresh.restore_snapshots(records, lambda names, key: True, T0) == 0
    assert "written by detectors-2.0.0" in caplog.text
    same_major = [r.model_copy(update={"detector_version": "detectors-1.9.3"}) for r in records]
    assert fresh.restore_snapshots(same_major, lambda names, key: True, T0) == 2


def test_under_a_changed_rule_the_baseline_is_kept_and_the_threshold_follows() -> None:
    learn, _ = learned_then_dropped()
    ev = AlertEvaluator(rules_yaml(DROP_RULES))
    for e in learn:
        ev.on_scored(e, e.event.occurred_at)
    records = ev.snapshots("w1", buffered=True)
    stricter = AlertEvaluator(rules_yaml(DROP_RULES.replace("arl0: 20000", "arl0: 200000")))
    assert stricter.restore_snapshots(records, lambda names, key: True, T0) == 2
    [before] = [r.drop_state() for r in records if len(r.level) == 2]
    [after] = [s.state for rt in stricter._drop for s in rt.scopes.values() if len(s.labels) == 2]
    assert before is not None and after.base == before.base and after.n_seen == before.n_seen
    assert after.h > before.h  # a rarer false alarm asked for: a higher threshold
    other_metric = AlertEvaluator(rules_yaml(DROP_RULES.replace("metric: nps", "metric: detractor_share")
                                             .replace("shift: 20", "shift: 0.1")))
    assert other_metric.restore_snapshots(records, lambda names, key: True, T0) == 0


# ----------------------------------------------------------------------------- idle records


def learned_evaluator() -> tuple[AlertEvaluator, datetime]:
    learn, _ = learned_then_dropped()
    ev = AlertEvaluator(rules_yaml(DROP_RULES))
    for e in learn:
        ev.on_scored(e, e.event.occurred_at)
    return ev, learn[-1].event.occurred_at


def test_a_scope_the_sweep_evicts_as_idle_has_its_record_tombstoned() -> None:
    ev, last = learned_evaluator()
    keys = {r.key() for r in ev.snapshots("w1", buffered=True)}
    ev.on_tick(last + timedelta(minutes=5))  # runs the buffered observations: the scopes' last activity
    ev.on_tick(last + DROP_EVICT_AFTER - timedelta(days=1))
    assert ev.forgotten_snapshots() == [] and ev.stats()["drop_scopes"] == 2  # not idle long enough
    ev.on_tick(last + DROP_EVICT_AFTER + timedelta(hours=2))
    assert set(ev.forgotten_snapshots()) == keys and ev.stats()["drop_scopes"] == 0
    assert ev.forgotten_snapshots() == []  # handed out once


def test_a_record_idle_for_the_eviction_age_is_tombstoned_instead_of_restored() -> None:
    ev, last = learned_evaluator()
    records = [through_the_topic(r) for r in ev.snapshots("w1", buffered=True)]
    assert all(r.last_at is not None and r.last_at <= last for r in records)  # its last detector run
    fresh = AlertEvaluator(rules_yaml(DROP_RULES))
    assert fresh.restore_snapshots(records, lambda names, key: True, last + DROP_EVICT_AFTER) == 0
    assert set(fresh.forgotten_snapshots()) == {r.key() for r in records}
    # restored a day earlier, the scopes keep their last activity, not the restart's time
    again = AlertEvaluator(rules_yaml(DROP_RULES))
    assert again.restore_snapshots(records, lambda names, key: True, last + timedelta(days=1)) == 2
    assert sorted(s.last_at for rt in again._drop for s in rt.scopes.values()) == sorted(
        r.last_at for r in records)


# ----------------------------------------------------------------------------- churn histories

CHURN_D0 = datetime(2026, 5, 1, tzinfo=UTC)


def negative(i: int, days: int, touchpoint: str, customer: str = "c-9") -> Any:
    at = CHURN_D0 + timedelta(days=days)
    return scored(i, at, nps=3, customer=customer, touchpoint=touchpoint), at


def churn_records(ev: AlertEvaluator) -> list[ChurnSnapshot]:
    out = []
    for r in ev.snapshots("w1"):
        decoded = decode(encode(r))
        if isinstance(decoded, ChurnSnapshot):
            out.append(decoded)
    return out


def test_a_customers_negative_experiences_outlive_a_restart() -> None:
    """Two negative experiences before the restart, the third after it: "repeated" fires as it
    would have without the restart (a fresh evaluator sees one experience and stays quiet)."""
    before = AlertEvaluator(rules_yaml(CHURN_RULES))
    for event, at in (negative(1, 0, "web"), negative(2, 3, "call_centre")):
        assert before.on_scored(event, at) == []
    [record] = churn_records(before)
    assert record.key() == "detector/churn/churn/c-9" and len(record.negatives) == 2
    assert churn_records(before) == []  # nothing changed since
    third, at = negative(3, 9, "store")
    restarted, fresh = AlertEvaluator(rules_yaml(CHURN_RULES)), AlertEvaluator(rules_yaml(CHURN_RULES))
    assert restarted.restore_churn([record], lambda cid: True) == 1
    [alert] = restarted.on_scored(third, at)
    assert alert.labels["signal"] == "repeated" and alert.evidence.example_event_ids == ["e-1", "e-2", "e-3"]
    assert fresh.on_scored(third, at) == []


def test_the_cooldown_outlives_a_restart_and_other_workers_customers_are_left_alone() -> None:
    ev = AlertEvaluator(rules_yaml(CHURN_RULES))
    [fired] = ev.on_scored(scored(1, CHURN_D0, nps=1, customer="c-1", churn_intent=True), CHURN_D0)
    promoter_at = CHURN_D0 + timedelta(days=1)
    [resolved] = ev.on_scored(scored(2, promoter_at, nps=10, customer="c-1"), promoter_at)
    assert resolved.alert_id == fired.alert_id and resolved.status is AlertStatus.resolved
    records = churn_records(ev)
    again_at = CHURN_D0 + timedelta(days=5)  # within the 30-day cooldown of "intent"
    again = scored(3, again_at, nps=0, customer="c-1", churn_intent=True)
    restarted, fresh = AlertEvaluator(rules_yaml(CHURN_RULES)), AlertEvaluator(rules_yaml(CHURN_RULES))
    assert restarted.restore_churn(records, lambda cid: True) == 1
    assert restarted.on_scored(again, again_at) == []  # still cooling down
    assert len(fresh.on_scored(again, again_at)) == 1  # what a restart used to cause
    elsewhere = AlertEvaluator(rules_yaml(CHURN_RULES))
    assert elsewhere.restore_churn(records, lambda cid: cid != "c-1") == 0


def test_an_idle_customers_history_is_tombstoned_when_the_sweep_forgets_it() -> None:
    ev = AlertEvaluator(rules_yaml(CHURN_RULES))
    event, at = negative(1, 0, "web")
    ev.on_scored(event, at)
    assert [r.key() for r in churn_records(ev)] == ["detector/churn/churn/c-9"]
    ev.on_tick(at + timedelta(days=31))
    assert ev.stats()["customers"] == 0
    assert ev.forgotten_snapshots() == ["detector/churn/churn/c-9"]


# ----------------------------------------------------------------------------- surge windows


def test_a_restored_scope_keeps_its_surge_baseline_and_fires_as_the_original() -> None:
    """Ten days of comments form the baseline; the worker stops (snapshot with buffered
    comments) and a successor restores it: day 10's billing surge fires there exactly as on the
    original, while a worker without the snapshot has no baseline and stays quiet."""
    rng = random.Random(11)
    events: list[Any] = []
    for day in range(12):
        events += comment_day(rng, day, 40, 0.5 if day == 10 else 0.1, day * 100)
    original = AlertEvaluator(rules_yaml(SURGE_RULES))
    assert run(original, events[:405]) == []  # days 0-9 and the start of day 10
    records = [through_the_topic_any(r) for r in original.snapshots("w1", buffered=True)]
    surges = [r for r in records if isinstance(r, SurgeSnapshot)]
    assert [r.key() for r in surges] == ['detector/surge/surge/["touchpoint","store"]']
    restored, fresh = AlertEvaluator(rules_yaml(SURGE_RULES)), AlertEvaluator(rules_yaml(SURGE_RULES))
    assert restored.restore_snapshots(surges, lambda names, key: True, events[404].event.occurred_at) == 1
    expected = run(original, events[405:])
    assert [a.labels["theme"] for a in expected] == ["billing"]
    got = run(restored, events[405:])
    assert [(a.fingerprint, a.evidence.observed, a.evidence.baseline) for a in got] == [
        (a.fingerprint, a.evidence.observed, a.evidence.baseline) for a in expected]
    assert run(fresh, events[405:]) == []


def test_an_idle_surge_scope_is_tombstoned_when_swept() -> None:
    ev = AlertEvaluator(rules_yaml(SURGE_RULES))
    run(ev, comment_day(random.Random(1), 0, 30, 0.1, 0))
    assert [type(r) for r in ev.snapshots("w1", buffered=True)] == [SurgeSnapshot]
    first_day = FLOWS_T0  # comment_day's day 0
    ev.on_tick(first_day + timedelta(days=1, minutes=1))  # the window closes by time
    ev.on_tick(first_day + timedelta(days=20))  # 14 + 2 windows without a comment
    assert ev.stats()["surge_scopes"] == 0
    assert ev.forgotten_snapshots() == ['detector/surge/surge/["touchpoint","store"]']


def through_the_topic_any(record: Any) -> Any:
    return decode(encode(record))
