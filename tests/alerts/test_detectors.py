"""Specification of the alert detectors (`services.alerts.detectors`).

Synthetic streams with a known change point (the detector must find it within a stated number
of responses) and in-control streams (false alarms must stay below a stated rate).  All
randomness is seeded; the statements below hold for these seeds and were chosen with slack
against the values the benchmark (`python -m services.alerts.detectors.simulate`) reports.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.alert import AlertEvidence
from services.alerts.detectors import DETECTOR_VERSION, Decision, churn, drop, surge
from services.alerts.detectors.simulate import simulate

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PER_DAY = 480
IN_CONTROL = (0.50, 0.30, 0.20)  # NPS 30


def nps_stream(
    rng: random.Random, rates: tuple[float, float, float], n: int, start: int = 0
) -> list[drop.Observation]:
    """n responses (answers 10 / 7 / 0) spread evenly over days of PER_DAY responses."""
    p, _, d = rates
    out = []
    for i in range(start, start + n):
        u = rng.random()
        answer = 10 if u < p else (0 if u >= 1 - d else 7)
        out.append(drop.Observation(f"r{i}", T0 + timedelta(days=i / PER_DAY), answer))
    return out


def dropped(points: float) -> tuple[float, float, float]:
    p, pa, d = IN_CONTROL
    return (p - points / 200, pa, d + points / 200)


def first_alarm_after(decisions: list[Decision], position: int) -> int | None:
    later = [d.position - position for d in decisions if d.position > position]
    return min(later) if later else None


# =============================================================================== drop


class TestAggregateDropPromise:
    """The product promise, measured by the simulation at reduced size (full size in the
    benchmark): 480 responses/day, NPS 30 in control, baseline learned from the data."""

    @pytest.fixture(scope="class")
    def result(self) -> dict:
        return simulate(
            in_control_days=4000, fa_streams=40, change_reps=200, burn_in_days=30, seed=11
        )

    def test_false_alarms_stay_below_about_seven_per_thousand_days(self, result: dict) -> None:
        # Promise: <= 7 / 1,000 days; 4,000 simulated days carry sampling error, hence 10.
        assert result["false_alarms_per_1000_days"]["detector"] <= 10.0

    def test_ten_point_drop_found_within_a_median_of_about_560_responses(
        self, result: dict
    ) -> None:
        ten = result["delay_responses"]["10"]["detector"]
        assert ten["median"] <= 640  # promise 560; 200 reps -> slack for sampling error
        assert ten["undetected"] == 0

    def test_twenty_point_drop_found_within_a_median_of_280_responses(self, result: dict) -> None:
        twenty = result["delay_responses"]["20"]["detector"]
        assert twenty["median"] <= 280
        assert twenty["undetected"] == 0

    def test_beats_the_naive_yesterday_vs_last_week_rule(self, result: dict) -> None:
        for points in ("10", "20"):
            d = result["delay_responses"][points]
            assert d["detector"]["median"] < d["naive"]["median"]


class TestAggregateDropDetector:
    cfg = drop.DropConfig(metric="nps", shift=10.0)

    def warmed(self, seed: int = 1, days: int = 20) -> tuple[drop.DropState, random.Random]:
        rng = random.Random(seed)
        state, _decisions = drop.update(
            self.cfg, drop.new_state(self.cfg), nps_stream(rng, IN_CONTROL, days * PER_DAY)
        )
        return state, rng

    def test_stays_silent_while_learning_its_baseline(self) -> None:
        rng = random.Random(3)
        # Even a terrible start cannot alarm: there is no baseline yet.
        obs = nps_stream(rng, (0.1, 0.2, 0.7), self.cfg.warmup_n - 1)
        state, decisions = drop.update(self.cfg, drop.new_state(self.cfg), obs)
        assert decisions == []
        assert not state.active

    def test_learns_the_in_control_level_from_the_data(self) -> None:
        state, _ = self.warmed()
        assert state.active
        assert drop.baseline_value(self.cfg, state) == pytest.approx(30.0, abs=3.0)
        assert drop.baseline_n(self.cfg, state) > 5000

    @pytest.mark.parametrize(("points", "within"), [(20.0, 600), (30.0, 300)])
    def test_finds_a_drop_within_a_stated_number_of_responses(
        self, points: float, within: int
    ) -> None:
        delays = []
        for seed in range(8):
            state, rng = self.warmed(seed)
            start = state.n_seen
            _, decisions = drop.update(
                self.cfg, state, nps_stream(rng, dropped(points), 3 * PER_DAY, start)
            )
            delays.append(first_alarm_after(decisions, start))
        assert all(d is not None for d in delays)
        assert sorted(delays)[len(delays) // 2] <= within  # type: ignore[type-var]

    def test_in_control_false_alarms_are_rare_even_on_a_young_baseline(self) -> None:
        # 20 scopes, each learning for 10 days and then watched for 50 in-control days
        # (1,000 scope-days).  Young baselines are the hard case: a scope whose first days
        # happened to look good fires more often, so the count is over-dispersed.  The precise
        # promise (<= 7 / 1,000 days) is measured by the simulation; here: < 20 / 1,000 days.
        alarms = 0
        for seed in range(20):
            state, rng = self.warmed(100 + seed, days=10)
            _, decisions = drop.update(self.cfg, state, nps_stream(rng, IN_CONTROL, 50 * PER_DAY))
            alarms += len(decisions)
        assert alarms < 20

    def test_alarm_carries_checkable_evidence(self) -> None:
        state, rng = self.warmed(5)
        start = state.n_seen
        obs = nps_stream(rng, dropped(30.0), 2 * PER_DAY, start)
        _, decisions = drop.update(self.cfg, state, obs)
        d = decisions[0]
        assert d.kind == "aggregate_drop" and d.rule == "nps_drop_cusum"
        assert d.detector_version == DETECTOR_VERSION
        assert d.metric == "nps"
        assert d.observed is not None and d.baseline is not None and d.observed < d.baseline
        assert d.n >= self.cfg.min_n and d.baseline_n >= self.cfg.warmup_n
        assert d.interval_low is not None and d.interval_high is not None
        assert d.interval_low < d.observed - d.baseline < d.interval_high
        assert d.interval_high < 0  # a 30-point drop is unmistakable
        assert d.window_start is not None and d.window_end is not None
        assert d.window_start <= d.window_end == d.at
        by_id = {o.event_id: o for o in obs}
        assert d.example_event_ids and all(by_id[e].value <= 6 for e in d.example_event_ids)
        evidence = d.to_evidence()
        assert isinstance(evidence, AlertEvidence)
        assert evidence.n == d.n and evidence.baseline_n == d.baseline_n
        assert len(evidence.example_event_ids) <= 20

    def test_baseline_is_not_dragged_by_the_change(self) -> None:
        state, rng = self.warmed(7)
        start = state.n_seen
        state, decisions = drop.update(
            self.cfg, state, nps_stream(rng, dropped(20.0), 10 * PER_DAY, start)
        )
        assert decisions, "a lasting 20-point drop must fire"
        # Without relearning, the baseline still describes the old normal ...
        assert drop.baseline_value(self.cfg, state) == pytest.approx(30.0, abs=3.0)
        # ... so a lasting drop keeps firing (the service de-duplicates by fingerprint).
        assert len(decisions) >= 3

    def test_relearn_on_alarm_accepts_a_new_normal(self) -> None:
        cfg = drop.DropConfig(metric="nps", shift=10.0, relearn_on_alarm=True)
        rng = random.Random(8)
        state, _ = drop.update(cfg, drop.new_state(cfg), nps_stream(rng, IN_CONTROL, 20 * PER_DAY))
        start = state.n_seen
        state, decisions = drop.update(
            cfg, state, nps_stream(rng, dropped(20.0), 20 * PER_DAY, start)
        )
        assert len(decisions) == 1
        assert drop.baseline_value(cfg, state) == pytest.approx(10.0, abs=4.0)

    def test_update_does_not_mutate_its_input_state(self) -> None:
        state, rng = self.warmed(9, days=6)
        snapshot = state.copy()
        drop.update(self.cfg, state, nps_stream(rng, dropped(30.0), PER_DAY))
        assert state == snapshot

    def test_an_improvement_never_fires(self) -> None:
        state, rng = self.warmed(10, days=6)
        _, decisions = drop.update(
            self.cfg, state, nps_stream(rng, (0.8, 0.15, 0.05), 20 * PER_DAY)
        )
        assert decisions == []

    @settings(max_examples=15, deadline=None)
    @given(cuts=st.lists(st.integers(min_value=0, max_value=6 * PER_DAY), max_size=8))
    def test_replay_in_any_batching_gives_the_same_result(self, cuts: list[int]) -> None:
        rng = random.Random(12)
        obs = nps_stream(rng, IN_CONTROL, 5 * PER_DAY) + nps_stream(
            rng, dropped(30.0), PER_DAY, 5 * PER_DAY
        )
        whole_state, whole = drop.update(self.cfg, drop.new_state(self.cfg), obs)
        state, pieces = drop.new_state(self.cfg), []
        bounds = [0, *sorted(cuts), len(obs)]
        for a, b in itertools.pairwise(bounds):
            state, ds = drop.update(self.cfg, state, obs[a:b])
            pieces.extend(ds)
        assert pieces == whole
        assert state == whole_state


@pytest.mark.parametrize(
    ("metric", "shift", "good", "bad"),
    [
        # detractor share 20% -> 30%
        (
            "detractor_share",
            0.05,
            lambda r: 0 if r.random() < 0.2 else 9,
            lambda r: 0 if r.random() < 0.3 else 9,
        ),
        # CSAT top box 70% -> 58%
        ("top_box", 0.06, lambda r: r.random() < 0.70, lambda r: r.random() < 0.58),
        # mean sentiment (-1..1) 0.30 -> 0.15 with sd ~0.4
        (
            "mean",
            0.1,
            lambda r: max(-1, min(1, r.gauss(0.30, 0.4))),
            lambda r: max(-1, min(1, r.gauss(0.15, 0.4))),
        ),
    ],
)
def test_other_metrics_detect_their_drop_and_stay_quiet_in_control(
    metric, shift, good, bad
) -> None:  # type: ignore[no-untyped-def]
    cfg = drop.DropConfig(metric=metric, shift=shift)
    rng = random.Random(21)

    def stream(gen, n: int, start: int) -> list[drop.Observation]:  # type: ignore[no-untyped-def]
        return [
            drop.Observation(f"e{i}", T0 + timedelta(minutes=3 * i), gen(rng))
            for i in range(start, start + n)
        ]

    state, quiet = drop.update(cfg, drop.new_state(cfg), stream(good, 30 * PER_DAY, 0))
    assert state.active
    assert len(quiet) <= 1  # 30 days in control
    start = state.n_seen
    _, decisions = drop.update(cfg, state, stream(bad, 5 * PER_DAY, start))
    delay = first_alarm_after(decisions, start)
    assert delay is not None and delay <= 2 * PER_DAY
    d = next(d for d in decisions if d.position > start)
    assert d.metric == metric and d.rule == f"{metric}_drop_cusum"
    assert d.interval_low is not None and d.interval_low < d.interval_high  # type: ignore[operator]
    if metric == "detractor_share":
        assert d.observed > d.baseline  # type: ignore[operator]
    else:
        assert d.observed < d.baseline  # type: ignore[operator]


def test_drop_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        drop.DropConfig(metric="volume")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        drop.DropConfig(shift=-5)


# =============================================================================== surge

DAY = timedelta(days=1)
THEMES = ["billing", "delivery", "app", "staff", "price", "wait", "quality", "returns"]
SHARES = [0.20, 0.15, 0.12, 0.10, 0.08, 0.06, 0.04, 0.02]


def negative_day(
    rng: random.Random, day: int, n: int, shares: dict[str, float] | None = None
) -> list[surge.CommentObservation]:
    shares = shares or dict(zip(THEMES, SHARES))
    out = []
    for i in range(n):
        themes = tuple(t for t, s in shares.items() if rng.random() < s)
        at = T0 + day * DAY + timedelta(seconds=(i + 0.5) * 86400 / n)
        out.append(surge.CommentObservation(f"d{day}-{i}", at, True, themes))
    return out


class TestThemeSurge:
    cfg = surge.SurgeConfig()

    def baseline(self, rng: random.Random, days: int = 28, n: int = 100) -> surge.SurgeState:
        state = surge.new_state()
        for day in range(days):
            state, _ = surge.update(self.cfg, state, negative_day(rng, day, n))
        return state

    def test_fires_when_a_theme_share_of_negatives_doubles(self) -> None:
        rng = random.Random(1)
        state = self.baseline(rng)
        shares = dict(zip(THEMES, SHARES)) | {"delivery": 0.35}
        state, decisions = surge.update(
            self.cfg, state, negative_day(rng, 28, 100, shares), now=T0 + 29 * DAY
        )
        hits = [d for d in decisions if d.subject == "delivery"]
        assert len(hits) == 1
        d = hits[0]
        assert d.kind == "theme_surge" and d.rule == "theme_surge_share"
        assert d.metric == "theme_share_of_negative"
        assert d.observed == pytest.approx(0.35, abs=0.12)
        assert d.baseline == pytest.approx(0.15, abs=0.03)
        assert d.interval_low > 0  # type: ignore[operator]
        assert d.n == 100 and d.baseline_n >= 2000
        assert (d.window_start, d.window_end) == (T0 + 28 * DAY, T0 + 29 * DAY)
        assert 0 < len(d.example_event_ids) <= 20
        assert d.details["theme"] == "delivery"
        assert all(x.subject == "delivery" for x in decisions)

    def test_in_control_false_alarms_below_one_percent_of_theme_days(self) -> None:
        rng = random.Random(2)
        state = self.baseline(rng)
        alarms = 0
        for day in range(28, 128):
            state, decisions = surge.update(self.cfg, state, negative_day(rng, day, 100))
            alarms += len(decisions)
        # 100 days x 8 themes = 800 theme-days, each tested at 99.5% (two-sided) with a 1.5x
        # ratio floor and minimum counts: about 0.5% fire by chance; the statement is < 1%.
        assert alarms < 8

    def test_more_volume_with_the_same_mix_does_not_fire(self) -> None:
        rng = random.Random(3)
        state = self.baseline(rng)
        state, decisions = surge.update(
            self.cfg, state, negative_day(rng, 28, 600), now=T0 + 29 * DAY
        )
        assert decisions == []

    def test_needs_minimum_counts(self) -> None:
        rng = random.Random(4)
        state = self.baseline(rng)
        # Only 12 negatives, 10 of them about returns: large share, too few to say anything.
        shares = {"returns": 0.85}
        state, decisions = surge.update(
            self.cfg, state, negative_day(rng, 28, 12, shares), now=T0 + 29 * DAY
        )
        assert decisions == []

    def test_needs_a_baseline(self) -> None:
        rng = random.Random(5)
        state = self.baseline(rng, days=1)
        shares = {"billing": 0.9}
        _, decisions = surge.update(
            self.cfg, state, negative_day(rng, 1, 100, shares), now=T0 + 2 * DAY
        )
        assert decisions == []

    def test_a_new_theme_can_surge(self) -> None:
        rng = random.Random(6)
        state = self.baseline(rng)
        shares = dict(zip(THEMES, SHARES)) | {"outage": 0.2}
        _, decisions = surge.update(
            self.cfg, state, negative_day(rng, 28, 100, shares), now=T0 + 29 * DAY
        )
        assert [d.subject for d in decisions] == ["outage"]
        assert decisions[0].baseline == 0.0

    def test_positive_comments_do_not_count(self) -> None:
        rng = random.Random(7)
        state = self.baseline(rng)
        praise = [
            surge.CommentObservation(
                f"p{i}", T0 + 28 * DAY + timedelta(minutes=i), False, ("delivery",)
            )
            for i in range(500)
        ]
        _, decisions = surge.update(
            self.cfg, state, negative_day(rng, 28, 100) + praise, now=T0 + 29 * DAY
        )
        assert decisions == []

    def test_window_closes_on_the_clock_and_input_is_not_mutated(self) -> None:
        rng = random.Random(8)
        state = self.baseline(rng, days=3)
        snapshot = state.copy()
        later, _ = surge.update(self.cfg, state, [], now=T0 + 40 * DAY)
        assert state == snapshot
        assert later.current is not None and later.current.start == T0 + 40 * DAY
        assert len(later.history) == self.cfg.baseline_windows


# =============================================================================== churn


def ev(
    i: int,
    day: float,
    touchpoint: str = "support",
    negative: bool = True,
    churn_intent: bool = False,
    detractor: bool | None = None,
    customer: str = "c1",
) -> churn.CustomerEvent:
    return churn.CustomerEvent(
        f"e{i}", T0 + timedelta(days=day), customer, touchpoint, negative, churn_intent, detractor
    )


class TestChurnRisk:
    cfg = churn.ChurnConfig()

    def run(self, events: list[churn.CustomerEvent]) -> list[Decision]:
        state = churn.new_state()
        out: list[Decision] = []
        for e in events:
            state, ds = churn.update(self.cfg, state, e)
            out.extend(ds)
        return out

    def test_detractor_stating_intent_to_leave_fires_at_once(self) -> None:
        decisions = self.run([ev(1, 0, "web", negative=True, churn_intent=True, detractor=True)])
        assert [d.rule for d in decisions] == ["churn_intent_detractor"]
        d = decisions[0]
        assert d.kind == "churn_risk" and d.subject == "c1" and d.example_event_ids == ("e1",)
        assert d.window_start == d.window_end == T0
        assert d.to_evidence().metric == "churn_intent"

    def test_promoter_whose_comment_was_flagged_does_not_fire(self) -> None:
        assert self.run([ev(1, 0, negative=False, churn_intent=True, detractor=False)]) == []

    def test_intent_without_nps_answer_counts_when_the_experience_was_negative(self) -> None:
        assert len(self.run([ev(1, 0, negative=True, churn_intent=True, detractor=None)])) == 1
        assert self.run([ev(1, 0, negative=False, churn_intent=True, detractor=None)]) == []

    def test_detractor_without_intent_alone_does_not_fire(self) -> None:
        assert self.run([ev(1, 0, detractor=True)]) == []

    def test_intent_fires_once_per_cooldown(self) -> None:
        events = [ev(i, i, churn_intent=True, detractor=True, touchpoint="web") for i in range(3)]
        events.append(ev(9, 31, churn_intent=True, detractor=True, touchpoint="web"))
        assert [d.example_event_ids for d in self.run(events)] == [("e0",), ("e9",)]

    def test_three_negative_experiences_across_two_touchpoints_in_30_days_fire(self) -> None:
        events = [ev(1, 0, "store"), ev(2, 10, "support"), ev(3, 20, "store")]
        decisions = self.run(events)
        assert [d.rule for d in decisions] == ["repeated_negative_experiences"]
        d = decisions[0]
        assert d.n == 3 and d.example_event_ids == ("e1", "e2", "e3")
        assert (d.window_start, d.window_end) == (T0, T0 + timedelta(days=20))
        assert d.details["touchpoints"] == "store,support"

    @given(st.permutations([ev(1, 0, "store"), ev(2, 10, "support"), ev(3, 20, "store")]))
    def test_three_negative_experiences_fire_in_whatever_order_they_arrive(self, events: list) -> None:  # type: ignore[type-arg]
        """Several workers interleave partitions: a late event completes the window."""
        decisions = self.run(events)
        assert [d.rule for d in decisions] == ["repeated_negative_experiences"]
        assert decisions[0].n == 3 and set(decisions[0].example_event_ids) == {"e1", "e2", "e3"}

    def test_a_late_event_outside_the_newest_window_does_not_complete_it(self) -> None:
        assert self.run([ev(1, 40, "store"), ev(2, 41, "support"), ev(3, 0, "store")]) == []

    def test_repeated_negatives_at_one_touchpoint_do_not_fire(self) -> None:
        assert self.run([ev(i, i, "store") for i in range(5)]) == []

    def test_negatives_spread_beyond_the_window_do_not_fire(self) -> None:
        assert self.run([ev(1, 0, "store"), ev(2, 20, "support"), ev(3, 40, "store")]) == []

    def test_positive_experiences_do_not_count(self) -> None:
        events = [
            ev(1, 0, "store"),
            ev(2, 1, "web", negative=False),
            ev(3, 2, "app", negative=False),
            ev(4, 3, "store"),
        ]
        assert self.run(events) == []

    def test_redelivered_events_are_not_counted_twice(self) -> None:
        e1, e2 = ev(1, 0, "store"), ev(2, 1, "support")
        assert self.run([e1, e1, e2, e2, e1]) == []

    def test_state_is_per_customer(self) -> None:
        state, _ = churn.update(self.cfg, churn.new_state(), ev(1, 0, customer="a"))
        with pytest.raises(ValueError):
            churn.update(self.cfg, state, ev(2, 0, customer="b"))

    def test_idle_state_can_be_dropped(self) -> None:
        state, _ = churn.update(
            self.cfg, churn.new_state(), ev(1, 0, churn_intent=True, detractor=True)
        )
        assert not churn.is_idle(self.cfg, state, T0 + timedelta(days=5))
        assert churn.is_idle(self.cfg, state, T0 + timedelta(days=31))

    @given(
        st.lists(
            st.tuples(
                st.floats(0, 200),
                st.sampled_from(["web", "store", "app", "support"]),
                st.booleans(),
            ),
            max_size=40,
        )
    )
    def test_customers_without_negative_experiences_never_fire(
        self, raw: list[tuple[float, str, bool]]
    ) -> None:
        events = [
            ev(i, day, tp, negative=False, churn_intent=intent, detractor=False)
            for i, (day, tp, intent) in enumerate(sorted(raw))
        ]
        assert self.run(events) == []

    @given(
        st.lists(
            st.tuples(st.floats(0, 100), st.sampled_from(["web", "store", "app"])), max_size=30
        )
    )
    def test_repeated_rule_fires_at_most_once_per_cooldown(
        self, raw: list[tuple[float, str]]
    ) -> None:
        events = [ev(i, day, tp) for i, (day, tp) in enumerate(sorted(raw))]
        fired = [d.at for d in self.run(events) if d.rule == "repeated_negative_experiences"]
        assert all(b - a >= self.cfg.cooldown for a, b in itertools.pairwise(fired))  # type: ignore[operator]
