"""Specification of the alert flows (`services.alerts.flows.AlertEvaluator`).

Synthetic scored streams go in; what must come out:

* every condition gives exactly one ``firing`` alert while it lasts and at most one
  ``resolved`` alert (same ``alert_id``) when it clears -- never twice, never for something that
  did not fire (checked on every stream by :func:`check_lifecycle`);
* churn risk: one alert per customer (intent, or repeated negative experiences), resolved by a
  promoter answer or a quiet window;
* aggregate drop: fires once per scope (each configured scope level) with its evidence, and
  resolves once after recovery;
* theme surge: fires when a window closes with a surging theme, resolves when a later one
  closes without;
* reloads keep detector state; removed rules resolve their alerts.
"""

from __future__ import annotations

import gc
import random
import textwrap
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.alert import Alert, AlertKind, AlertStatus, Severity
from schemas.feedback import Comment, FeedbackEvent, Response
from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel, TextAnalysis
from services.alerts.detectors import DETECTOR_VERSION
from services.alerts.flows import AlertEvaluator, fingerprint
from services.alerts.rules import RuleSet, load_rules, parse

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC


# ============================================================================ helpers (shared)


def scored(
    i: int | str,
    at: datetime,
    *,
    touchpoint: str = "store",
    unit: str = "berlin-mitte",
    segment: str = "private",
    nps: int | None = None,
    csat: int | None = None,  # answer on 1..5
    customer: str | None = None,
    sentiment: float | None = None,
    themes: Iterable[str] = (),
    churn_intent: bool = False,
    complaint: bool = False,
) -> ScoredEvent:
    """A scored event as the scoring service would emit it (only what the flows read)."""
    responses = []
    if nps is not None:
        responses.append(Response(metric="nps", value=nps))
    if csat is not None:
        responses.append(Response(metric="csat", value=csat))
    text = None
    comment = None
    if sentiment is not None or themes or churn_intent or complaint:
        s = -0.8 if sentiment is None and (churn_intent or complaint) else (sentiment or 0.0)
        label = (SentimentLabel.negative if s < -0.2 else
                 SentimentLabel.positive if s > 0.2 else SentimentLabel.neutral)
        themes = list(themes)
        text = TextAnalysis(language="de", sentiment=s, sentiment_label=label, themes=themes,
                            negative_themes=themes if label is SentimentLabel.negative else [],
                            churn_intent=churn_intent, complaint=complaint)
        comment = Comment(text="…")
    event = FeedbackEvent(event_id=f"e-{i}", occurred_at=at, touchpoint=touchpoint, source="test",
                          unit=unit, segment=segment, customer_id=customer, responses=responses,
                          comment=comment)
    category = None
    if nps is not None:
        category = (NpsCategory.promoter if nps >= 9 else
                    NpsCategory.passive if nps >= 7 else NpsCategory.detractor)
    csat100 = None if csat is None else (csat - 1) * 25.0
    return ScoredEvent(event=event, scorer_version="test", accepted_at=at, scored_at=at, nps=nps,
                       nps_category=category, csat=csat100,
                       csat_top_box=None if csat is None else csat >= 4, text=text,
                       churn_intent=churn_intent, complaint=complaint)


def run(evaluator: AlertEvaluator, events: Iterable[ScoredEvent], *,
        tick_every: timedelta | None = timedelta(minutes=10)) -> list[Alert]:
    """Feed events with now = event time, ticking every `tick_every` of event time; at the end
    everything buffered is flushed."""
    out: list[Alert] = []
    last_tick = None
    now = None
    for s in events:
        now = s.event.occurred_at
        out += evaluator.on_scored(s, now)
        if tick_every is not None and (last_tick is None or now - last_tick >= tick_every):
            out += evaluator.on_tick(now)
            last_tick = now
    if now is not None:
        out += evaluator.flush(now) + evaluator.on_tick(now)
    return out


def check_lifecycle(alerts: list[Alert]) -> None:
    """The invariants every alert stream satisfies (see the module doc)."""
    open_: dict[str, Alert] = {}
    ids: set[str] = set()
    for a in alerts:
        assert a.fingerprint == a.alert_id.rsplit("-", 1)[0]
        if a.status is AlertStatus.firing:
            assert a.fingerprint not in open_, f"fired twice: {a.labels}"
            assert a.alert_id not in ids, "alert id reused"
            assert a.ends_at is None
            open_[a.fingerprint] = a
            ids.add(a.alert_id)
        else:
            fired = open_.pop(a.fingerprint, None)
            assert fired is not None, f"resolved without firing (or twice): {a.labels}"
            assert fired.alert_id == a.alert_id and fired.labels == a.labels
            assert a.ends_at is not None and a.ends_at >= a.starts_at


def rules_yaml(body: str) -> RuleSet:
    return parse("version: 1\n" + textwrap.dedent(body) + textwrap.dedent("""\
        routing:
          receivers: [webhook-ops]
          default: {receiver: webhook-ops}
        """))


# ============================================================================ churn risk

CHURN_RULES = """\
    rules:
      - name: churn
        kind: churn_risk
        severity: critical
        params: {window: 30d, min_negative: 3, min_touchpoints: 2, cooldown: 30d}
        resolve: {quiet_for: 14d, on_promoter: true}
        overrides:
          - match: {touchpoint: internal}
            severity: info
    """


class TestChurnRisk:
    def test_a_detractor_stating_intent_to_leave_gives_one_alert_with_evidence(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        first = scored(1, T0, nps=2, customer="c-1", churn_intent=True)
        [alert] = ev.on_scored(first, T0)
        assert alert.kind is AlertKind.churn_risk and alert.status is AlertStatus.firing
        assert alert.severity is Severity.critical and alert.rule == "churn"
        assert alert.labels == {"touchpoint": "store", "unit": "berlin-mitte", "segment": "private",
                                "customer_id": "c-1", "rule": "churn", "kind": "churn_risk",
                                "severity": "critical", "signal": "intent"}
        assert alert.fingerprint == fingerprint("churn", {"customer_id": "c-1"})
        assert alert.alert_id.startswith(alert.fingerprint + "-")
        assert alert.detector_version == DETECTOR_VERSION
        assert alert.evidence.example_event_ids == ["e-1"]
        assert alert.evidence.n == 1 and alert.evidence.window_start == T0
        assert "c-1" in alert.summary and alert.starts_at == T0
        # the same customer keeps complaining, the same event is redelivered: nothing new
        assert ev.on_scored(first, T0 + timedelta(minutes=1)) == []
        more = [scored(i, T0 + timedelta(hours=i), nps=0, customer="c-1", churn_intent=True,
                       touchpoint=tp) for i, tp in zip(range(2, 6), ["web", "app", "chat", "store"], strict=True)]
        assert run(ev, more) == []
        assert [a.alert_id for a in ev.firing()] == [alert.alert_id]

    def test_no_alert_for_happy_or_contradictory_customers(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        events = [
            scored(1, T0, nps=10, customer="c-1", sentiment=0.9),
            scored(2, T0, nps=8, customer="c-2", churn_intent=True),  # passive: score contradicts text
            scored(3, T0, nps=3, customer="c-3"),  # a detractor without churn language
        ]
        assert run(ev, events) == []

    def test_repeated_negative_experiences_across_touchpoints(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        events = [scored(1, T0, nps=4, customer="c-9", touchpoint="web"),
                  scored(2, T0 + timedelta(days=3), csat=1, customer="c-9", touchpoint="call_centre"),
                  scored(3, T0 + timedelta(days=9), customer="c-9", touchpoint="store", complaint=True)]
        alerts = run(ev, events)
        [alert] = alerts
        assert alert.labels["signal"] == "repeated" and alert.labels["touchpoint"] == "store"
        assert alert.evidence.example_event_ids == ["e-1", "e-2", "e-3"]
        assert alert.evidence.window_start == T0 and alert.evidence.n == 3

    def test_three_negatives_at_one_touchpoint_are_not_a_pattern(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        events = [scored(i, T0 + timedelta(days=i), nps=3, customer="c-1") for i in range(5)]
        assert run(ev, events) == []

    def test_resolves_once_when_the_customers_next_feedback_is_a_promoter(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        [fired] = ev.on_scored(scored(1, T0, nps=1, customer="c-1", churn_intent=True), T0)
        later = T0 + timedelta(days=2)
        [resolved] = ev.on_scored(scored(2, later, nps=10, customer="c-1"), later)
        assert resolved.status is AlertStatus.resolved and resolved.alert_id == fired.alert_id
        assert resolved.ends_at == later and resolved.evidence.details["resolved_reason"] == "promoter"
        assert ev.on_scored(scored(3, later, nps=10, customer="c-1"), later) == []
        assert ev.on_tick(later + timedelta(days=30)) == []
        assert ev.firing() == []

    def test_resolves_once_after_a_quiet_window(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        [fired] = ev.on_scored(scored(1, T0, nps=1, customer="c-1", churn_intent=True), T0)
        # another negative experience on day 5 restarts the quiet window
        assert ev.on_scored(scored(2, T0 + timedelta(days=5), nps=2, customer="c-1"),
                            T0 + timedelta(days=5)) == []
        assert ev.on_tick(T0 + timedelta(days=14)) == []
        [resolved] = ev.on_tick(T0 + timedelta(days=19))
        assert resolved.alert_id == fired.alert_id and resolved.status is AlertStatus.resolved
        assert resolved.evidence.details["resolved_reason"] == "quiet"
        assert ev.on_tick(T0 + timedelta(days=40)) == []

    def test_customers_without_an_id_are_followed_up_per_event(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        alerts = run(ev, [scored(1, T0, nps=0, churn_intent=True), scored(2, T0, nps=0, churn_intent=True)])
        assert sorted(a.labels["customer_id"] for a in alerts) == ["event:e-1", "event:e-2"]

    def test_scope_override_sets_the_severity(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        [alert] = ev.on_scored(scored(1, T0, nps=0, customer="emp-1", touchpoint="internal",
                                      churn_intent=True), T0)
        assert alert.severity is Severity.info and alert.labels["severity"] == "info"

    def test_idle_customer_state_is_evicted(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        run(ev, [scored(i, T0, nps=3, customer=f"c-{i}") for i in range(50)])
        assert ev.stats()["customers"] == 50
        ev.on_tick(T0 + timedelta(days=31))
        assert ev.stats()["customers"] == 0

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10), st.booleans(), st.booleans(),
                              st.sampled_from(["web", "store", "app"]), st.integers(0, 20 * 24)),
                    max_size=60))
    def test_exactly_one_alert_per_customer_at_a_time(self, spec: list) -> None:  # type: ignore[type-arg]
        """Whatever the customers do: at most one firing alert per customer, each resolved at
        most once, and a customer who stated intent as a detractor has (had) an alert."""
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        events = []
        hours = 0
        for i, (c, nps, intent, complaint, tp, gap) in enumerate(spec):
            hours += gap
            events.append(scored(i, T0 + timedelta(hours=hours), nps=nps, customer=f"c-{c}",
                                 churn_intent=intent, complaint=complaint, touchpoint=tp))
        alerts = run(ev, events, tick_every=timedelta(hours=6))
        check_lifecycle(alerts)
        first_intent = {}
        for e in events:
            if e.churn_intent and e.nps_category is NpsCategory.detractor:
                first_intent.setdefault(e.event.customer_id, e)
        fired = {a.labels["customer_id"] for a in alerts if a.status is AlertStatus.firing}
        assert set(first_intent) <= fired


# ============================================================================ aggregate drop

DROP_RULES = """\
    rules:
      - name: nps-drop
        kind: aggregate_drop
        metric: nps
        min_n: 30
        params: {shift: 20, warmup_n: 400, block_n: 50, hold_n: 100, arl0: 20000}
        resolve: {quiet_n: 600, quiet_for: 30d, reset_fraction: 0.5}
        overrides:
          - match: {touchpoint: call_centre}
            severity: critical
          - match: {unit: closed-unit}
            enabled: false
    """

IN_CONTROL = (0.50, 0.30, 0.20)  # NPS 30
DROPPED = (0.25, 0.30, 0.45)  # NPS -20


def nps_stream(rng: random.Random, rates: tuple[float, float, float], n: int, start: int,
               prefix: str = "", **kw: object) -> list[ScoredEvent]:
    p, _, d = rates
    out = []
    for i in range(start, start + n):
        u = rng.random()
        answer = 10 if u < p else (2 if u >= 1 - d else 7)
        out.append(scored(f"{prefix}{i}", T0 + timedelta(minutes=3 * i), nps=answer, **kw))  # type: ignore[arg-type]
    return out


COMMON = frozenset({("rule", "nps-drop"), ("kind", "aggregate_drop"), ("severity", "warning"),
                    ("metric", "nps")})


class TestAggregateDrop:
    @pytest.fixture(scope="class")
    def drop_run(self) -> tuple[list[ScoredEvent], list[Alert]]:
        rng = random.Random(7)
        events = (nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500)
                  + nps_stream(rng, IN_CONTROL, 2500, 2000))
        return events, run(AlertEvaluator(rules_yaml(DROP_RULES)), events)

    def test_fires_once_per_scope_and_resolves_once(self, drop_run) -> None:  # type: ignore[no-untyped-def]
        events, alerts = drop_run
        check_lifecycle(alerts)
        fired = [a for a in alerts if a.status is AlertStatus.firing]
        resolved = [a for a in alerts if a.status is AlertStatus.resolved]
        # one scope per configured level: touchpoint x unit x segment, and touchpoint x unit
        assert {frozenset(a.labels.items()) - COMMON for a in fired} == {
            frozenset({("touchpoint", "store"), ("unit", "berlin-mitte"), ("segment", "private")}),
            frozenset({("touchpoint", "store"), ("unit", "berlin-mitte")}),
        }
        assert len({a.fingerprint for a in fired}) == 2
        assert len(resolved) == 2
        change = events[1500].event.occurred_at
        recovery = events[2000].event.occurred_at
        for a in fired:
            assert change <= a.starts_at <= recovery  # found during the drop, not before
        for a in resolved:
            assert a.ends_at is not None and a.ends_at > recovery
            assert a.evidence.details["resolved_reason"] == "condition cleared"

    def test_evidence_lets_a_sceptic_check_the_alarm(self, drop_run) -> None:  # type: ignore[no-untyped-def]
        events, alerts = drop_run
        a = next(a for a in alerts if a.status is AlertStatus.firing)
        e = a.evidence
        assert a.labels["metric"] == e.metric == "nps" and a.rule == "nps-drop"
        assert a.detector_version == DETECTOR_VERSION
        assert e.observed is not None and e.baseline is not None and e.observed < e.baseline
        assert 20 <= e.baseline <= 40  # learned from the in-control data (NPS 30)
        assert e.n >= 30 and e.baseline_n >= 400
        assert e.interval_low is not None and e.interval_high is not None
        assert e.interval_low < e.interval_high < 0  # the change is a drop, with its interval
        # the detractor share's Newcombe interval of the change
        assert 0 < e.details["detractor_share_change_low"] < e.details["detractor_share_change_high"]
        assert e.window_start is not None and e.window_end is not None
        assert events[1400].event.occurred_at <= e.window_start <= e.window_end
        ids = {s.event_id for s in events[1400:2000]}
        assert e.example_event_ids and set(e.example_event_ids) <= ids
        assert "nps" in a.summary and "berlin-mitte" in a.summary

    def test_each_scope_has_its_own_baseline(self) -> None:
        rng = random.Random(7)
        a_before, b_before = nps_stream(rng, IN_CONTROL, 1500, 0, "a", unit="a"), \
            nps_stream(rng, IN_CONTROL, 1500, 0, "b", unit="b")
        a_after, b_after = nps_stream(rng, DROPPED, 500, 1500, "a", unit="a"), \
            nps_stream(rng, IN_CONTROL, 500, 1500, "b", unit="b")
        events = sorted(a_before + b_before + a_after + b_after,
                        key=lambda s: (s.event.occurred_at, s.event_id))
        alerts = run(AlertEvaluator(rules_yaml(DROP_RULES)), events)
        assert {a.labels["unit"] for a in alerts} == {"a"}
        assert len([a for a in alerts if a.status is AlertStatus.firing]) == 2

    def test_no_alert_without_a_change(self) -> None:
        rng = random.Random(3)
        alerts = run(AlertEvaluator(rules_yaml(DROP_RULES)), nps_stream(rng, IN_CONTROL, 3000, 0))
        assert alerts == []

    def test_min_n_gates_small_windows(self) -> None:
        rules = rules_yaml(DROP_RULES.replace("min_n: 30", "min_n: 100000"))
        rng = random.Random(7)
        events = nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500)
        assert run(AlertEvaluator(rules), events) == []

    def test_overrides_set_severity_and_disable_scopes(self) -> None:
        rng = random.Random(7)
        cc = nps_stream(rng, IN_CONTROL, 1500, 0, touchpoint="call_centre") + \
            nps_stream(rng, DROPPED, 500, 1500, touchpoint="call_centre")
        alerts = run(AlertEvaluator(rules_yaml(DROP_RULES)), cc)
        assert alerts and all(a.severity is Severity.critical for a in alerts)
        rng = random.Random(7)
        closed = nps_stream(rng, IN_CONTROL, 1500, 0, unit="closed-unit") + \
            nps_stream(rng, DROPPED, 500, 1500, unit="closed-unit")
        assert run(AlertEvaluator(rules_yaml(DROP_RULES)), closed) == []

    def test_scopes_are_configurable(self) -> None:
        rules = rules_yaml(DROP_RULES.replace("min_n: 30", "min_n: 30\n        scopes: [[unit]]"))
        rng = random.Random(7)
        events = nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500)
        fired = [a for a in run(AlertEvaluator(rules), events) if a.status is AlertStatus.firing]
        assert [a.labels.get("unit") for a in fired] == ["berlin-mitte"]
        assert "touchpoint" not in fired[0].labels

    def test_batching_does_not_change_the_decisions(self) -> None:
        rng = random.Random(7)
        events = nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500)
        one = run(AlertEvaluator(rules_yaml(DROP_RULES), batch_size=1), events, tick_every=None)
        many = run(AlertEvaluator(rules_yaml(DROP_RULES), batch_size=64), events, tick_every=None)
        assert [a.evidence for a in one] == [a.evidence for a in many]

    def test_other_metrics_csat_top_box_and_sentiment(self) -> None:
        rules = rules_yaml("""\
            defaults: {scopes: [[touchpoint]]}
            rules:
              - name: top-box
                kind: aggregate_drop
                metric: csat_top_box
                params: {shift: 0.2, warmup_n: 400, block_n: 50, hold_n: 100, arl0: 20000}
              - name: sentiment
                kind: aggregate_drop
                metric: sentiment
                params: {shift: 0.3, warmup_n: 400, block_n: 50, hold_n: 100, arl0: 20000}
            """)
        rng = random.Random(5)
        events = []
        for i in range(2000):
            bad = i >= 1500
            csat = rng.choice([1, 2, 3, 3, 4, 5] if bad else [3, 4, 4, 5, 5, 5])
            s = max(-1.0, min(1.0, rng.gauss(-0.4 if bad else 0.2, 0.4)))
            events.append(scored(i, T0 + timedelta(minutes=3 * i), csat=csat, sentiment=s))
        fired = [a for a in run(AlertEvaluator(rules), events) if a.status is AlertStatus.firing]
        assert sorted(a.rule for a in fired) == ["sentiment", "top-box"]
        top = next(a for a in fired if a.rule == "top-box")
        assert top.evidence.metric == "csat_top_box" and top.evidence.observed < top.evidence.baseline  # type: ignore[operator]


# ============================================================================ theme surge

SURGE_RULES = """\
    defaults: {scopes: [[touchpoint]]}
    rules:
      - name: surge
        kind: theme_surge
        min_n: 20
        params: {window: 1d, baseline_windows: 14, min_theme_count: 5,
                 min_baseline_negatives: 100, min_ratio: 1.5, confidence: 0.99}
    """


def comment_day(rng: random.Random, day: int, n: int, billing_share: float, start: int) -> list[ScoredEvent]:
    out = []
    for k in range(n):
        theme = "billing" if rng.random() < billing_share else rng.choice(["delivery", "staff", "app"])
        out.append(scored(start + k, T0 + timedelta(days=day, minutes=10 * k), sentiment=-0.7,
                          themes=[theme]))
    return out


class TestThemeSurge:
    def test_fires_when_the_window_closes_and_resolves_when_the_next_one_closes_quietly(self) -> None:
        rng = random.Random(11)
        ev = AlertEvaluator(rules_yaml(SURGE_RULES))
        events: list[ScoredEvent] = []
        for day in range(12):
            events += comment_day(rng, day, 40, 0.5 if day == 10 else 0.1, day * 100)
        alerts = run(ev, events[:400])  # days 0-9: the baseline
        assert alerts == []
        # day 10 closes when day 11's comments arrive (or by time on a tick): billing surged
        alerts = run(ev, events[400:])
        [fired] = alerts
        assert fired.kind is AlertKind.theme_surge and fired.labels["theme"] == "billing"
        assert fired.labels["touchpoint"] == "store"
        assert fired.fingerprint == fingerprint("surge", {"touchpoint": "store", "theme": "billing"})
        assert fired.evidence.window_start == T0 + timedelta(days=10)
        assert fired.evidence.window_end == T0 + timedelta(days=11)
        assert fired.evidence.observed > 2 * fired.evidence.baseline  # type: ignore[operator]
        assert fired.evidence.interval_low is not None and fired.evidence.interval_low > 0
        assert fired.evidence.example_event_ids
        # day 11 closes (by time, no traffic needed) without a surge: resolved once
        [resolved] = ev.on_tick(T0 + timedelta(days=12, minutes=1))
        assert resolved.status is AlertStatus.resolved and resolved.alert_id == fired.alert_id
        assert ev.on_tick(T0 + timedelta(days=13, minutes=1)) == []
        check_lifecycle([fired, resolved])


# ============================================================================ reload


class TestReload:
    def test_reload_keeps_detector_state_and_the_firing_alert(self) -> None:
        both = DROP_RULES.rstrip(" ") + CHURN_RULES.replace("    rules:\n", "")
        rules = rules_yaml(both)
        ev = AlertEvaluator(rules)
        rng = random.Random(7)
        events = nps_stream(rng, IN_CONTROL, 1500, 0) + nps_stream(rng, DROPPED, 500, 1500)
        alerts = run(ev, events[:1500])
        assert alerts == []
        changed = both.replace("resolve: {quiet_n: 600", "resolve: {quiet_n: 700").replace(
            "params: {shift: 20,", "params: {shift: 15,")
        ev.reload(rules_yaml(changed))
        alerts = run(ev, events[1500:])
        # the learned baseline survived (also under a changed design shift): the drop is found
        # against the baseline learned before the reload, without a new warm-up
        fired = [a for a in alerts if a.status is AlertStatus.firing]
        assert len(fired) == 2 and all(a.evidence.baseline_n >= 1000 for a in fired)
        assert all(a.evidence.details["shift"] == 15 for a in fired)
        firing = {a.alert_id for a in ev.firing()}
        ev.reload(ev.rules)
        assert {a.alert_id for a in ev.firing()} == firing
        assert ev.on_tick(events[-1].event.occurred_at) == []

    def test_a_removed_rule_resolves_its_alerts_once_on_the_next_tick(self) -> None:
        ev = AlertEvaluator(rules_yaml(CHURN_RULES))
        [fired] = ev.on_scored(scored(1, T0, nps=0, customer="c-1", churn_intent=True), T0)
        ev.reload(rules_yaml(DROP_RULES))
        [resolved] = ev.on_tick(T0 + timedelta(minutes=1))
        assert resolved.alert_id == fired.alert_id and resolved.status is AlertStatus.resolved
        assert resolved.ends_at == T0 + timedelta(minutes=1)
        assert ev.on_tick(T0 + timedelta(minutes=2)) == [] and ev.firing() == []


# ============================================================================ defaults, speed


class TestDefaultRulesAndCost:
    def test_the_default_rules_raise_the_classic_churn_alert(self) -> None:
        ev = AlertEvaluator(load_rules())
        [alert] = ev.on_scored(scored(1, T0, nps=1, customer="c-1", churn_intent=True), T0)
        assert alert.kind is AlertKind.churn_risk and alert.evidence.example_event_ids == ["e-1"]

    def test_on_scored_is_cheap_for_non_firing_traffic(self) -> None:
        """Target ~20 us per event amortised at a busy 200 events/s (default rules; 4
        touchpoints x 20 units x 2 segments; a customer id on every event; 40% with a comment;
        ticks every 0.5 s). Asserted with slack for slow CI machines; the measured value is
        printed (pytest -s)."""
        rng = random.Random(1)
        events = []
        for i in range(20_000):
            comment = rng.random() < 0.4
            events.append(scored(
                i, T0 + timedelta(milliseconds=5 * i), nps=rng.choice([2, 5, 7, 8, 8, 9, 9, 10, 10, 10]),
                csat=rng.choice([2, 3, 4, 4, 5, 5, 5]),
                touchpoint=rng.choice(["web", "store", "app", "call_centre"]),
                unit=f"u{rng.randrange(20)}", segment=rng.choice(["private", "business"]),
                customer=f"c{rng.randrange(200_000)}",
                sentiment=max(-1.0, min(1.0, rng.gauss(0.2, 0.5))) if comment else None,
                themes=[rng.choice(["billing", "staff", "delivery"])] if comment else (),
            ))
        ev = AlertEvaluator(load_rules())
        gc.collect()
        gc.freeze()
        try:
            start = time.process_time()  # CPU time: robust against a busy machine
            alerts = []
            for i, s in enumerate(events):
                alerts += ev.on_scored(s, s.event.occurred_at)
                if i % 100 == 0:
                    alerts += ev.on_tick(s.event.occurred_at)
            per_event = (time.process_time() - start) / len(events) * 1e6
        finally:
            gc.unfreeze()
        print(f"on_scored + on_tick: {per_event:.1f} us per event, {len(alerts)} alerts")
        assert per_event < 60
