"""Specification of `services.common.statistics` against published reference values.

Sources of the reference numbers:

* Newcombe (1998a), "Two-sided confidence intervals for the single proportion: comparison of
  seven methods", Stat. Med. 17:857-872, Table I, method 3 (Wilson score, no continuity
  correction).
* Newcombe (1998b), "Interval estimation for the difference between independent proportions:
  comparison of eleven methods", Stat. Med. 17:873-890, Table II, method 10 (hybrid score).
  Examples (a) and (b) are also the expected values in the test-suite of the R package
  `propint` (m-Py/propint), which reproduces that table.
* R's `t.test(1:10)` and `t.test(1:10, y = c(7:20))` (the examples of `?t.test`).
* Student-t quantiles from standard tables.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.common.statistics import (
    MeanSums,
    mean_diff_interval,
    mean_interval,
    newcombe_diff_interval,
    nps_diff_interval,
    nps_interval,
    nps_variance,
    t_quantile,
    wilson_interval,
    z_for_confidence,
)

# --------------------------------------------------------------------- published values


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_1998a_table_1(x: int, n: int, low: float, high: float) -> None:
    ci = wilson_interval(x, n)
    assert ci.low == pytest.approx(low, abs=5e-5)
    assert ci.high == pytest.approx(high, abs=5e-5)
    assert ci.estimate == pytest.approx(x / n)
    assert ci.n == n


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),  # (a)
        (9, 10, 3, 10, 0.1705, 0.8090),  # (b)
        (5, 56, 0, 29, -0.0381, 0.1926),  # (d)
        (0, 10, 0, 20, -0.1611, 0.2775),  # (e)
        (0, 10, 0, 10, -0.2775, 0.2775),  # (f)
        (10, 10, 0, 20, 0.6791, 1.0000),  # (g)
        (10, 10, 0, 10, 0.6075, 1.0000),  # (h)
    ],
)
def test_newcombe_hybrid_score_matches_newcombe_1998b_table_2_method_10(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    ci = newcombe_diff_interval(x1, n1, x2, n2)
    assert ci.low == pytest.approx(low, abs=5e-5)
    assert ci.high == pytest.approx(high, abs=5e-5)
    assert ci.estimate == pytest.approx(x1 / n1 - x2 / n2)


def test_newcombe_is_wilson_limits_squared_and_added() -> None:
    # The defining construction, checked independently of the implementation's code path.
    a, b = wilson_interval(56, 70), wilson_interval(48, 80)
    d = a.estimate - b.estimate
    ci = newcombe_diff_interval(56, 70, 48, 80)
    assert ci.low == pytest.approx(
        d - math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    )
    assert ci.high == pytest.approx(
        d + math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    )


def test_wilson_limits_solve_the_score_equation() -> None:
    # Independent route: the limits are the roots p of (phat - p)^2 = z^2 p (1 - p) / n.
    z = z_for_confidence(0.95)
    for x, n in [(81, 263), (15, 148), (1, 29), (7, 9)]:
        ci = wilson_interval(x, n)
        for p in (ci.low, ci.high):
            assert (x / n - p) ** 2 == pytest.approx(z * z * p * (1 - p) / n, abs=1e-12)


@pytest.mark.parametrize(
    ("p", "df", "q"),
    [
        (0.975, 1, 12.7062),
        (0.975, 9, 2.2622),
        (0.975, 30, 2.0423),
        (0.995, 4, 4.6041),
        (0.95, 10, 1.8125),
    ],
)
def test_t_quantiles_match_tables(p: float, df: int, q: float) -> None:
    assert t_quantile(p, df) == pytest.approx(q, abs=1e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-q, abs=1e-4)


def test_z_for_confidence() -> None:
    assert z_for_confidence(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_for_confidence(0.99) == pytest.approx(2.575829, abs=1e-6)
    with pytest.raises(ValueError):
        z_for_confidence(1.0)


def test_mean_interval_matches_r_t_test_one_sample() -> None:
    ci = mean_interval(*MeanSums.of(list(range(1, 11))))  # t.test(1:10)
    assert ci.estimate == 5.5
    assert ci.low == pytest.approx(3.334149, abs=1e-6)
    assert ci.high == pytest.approx(7.665851, abs=1e-6)


def test_mean_diff_interval_matches_r_welch_t_test() -> None:
    ci = mean_diff_interval(MeanSums.of(list(range(1, 11))), MeanSums.of(list(range(7, 21))))
    assert ci.estimate == -8.0  # t.test(1:10, y = c(7:20)): df 21.982
    assert ci.low == pytest.approx(-11.052802, abs=1e-6)
    assert ci.high == pytest.approx(-4.947198, abs=1e-6)


def test_mean_interval_normal_and_bounds() -> None:
    s = MeanSums.of([0.9, 1.0, 1.0, 0.95])
    normal = mean_interval(*s, method="normal")
    t = mean_interval(*s)
    assert normal.width < t.width  # t is wider for small n
    clipped = mean_interval(*s, bounds=(-1.0, 1.0))
    assert clipped.high <= 1.0 and clipped.low == t.low
    assert math.isnan(mean_interval(0, 0, 0).estimate)
    one = mean_interval(1, 5.0, 25.0, bounds=(0.0, 100.0))
    assert (one.estimate, one.low, one.high) == (5.0, 0.0, 100.0)


# --------------------------------------------------------------------- NPS


def test_nps_interval_by_hand() -> None:
    # 50 promoters, 30 passives, 20 detractors: NPS 30, Var(pP - pD) = (0.7 - 0.09) / 100.
    ci = nps_interval(50, 30, 20, method="wald")
    half = 100 * 1.959964 * math.sqrt(0.61 / 100)
    assert ci.estimate == pytest.approx(30.0)
    assert (ci.low, ci.high) == (
        pytest.approx(30 - half, abs=1e-4),
        pytest.approx(30 + half, abs=1e-4),
    )
    assert nps_variance(50, 30, 20) == pytest.approx(0.0061)


def test_adjusted_wald_nps_interval_by_hand() -> None:
    # 3 promoters of 3: adjusted counts 3.75 / 1.5 / 0.75 of 6 -> centre 50,
    # Var = (0.625 + 0.125 - 0.5^2) / 6 = 1/12; the estimate stays the observed 100.
    ci = nps_interval(3, 0, 0)
    half = 100 * 1.959964 * math.sqrt(1 / 12)
    assert (ci.estimate, ci.high, ci.n) == (100.0, 100.0, 3)
    assert ci.low == pytest.approx(50 - half, abs=1e-4)  # about -6.58, not the Wald [100, 100]
    # 50/30/20: adjusted 50.75/31.5/20.75 of 103.
    pp, pd = 50.75 / 103, 20.75 / 103
    half = 100 * 1.959964 * math.sqrt((pp + pd - (pp - pd) ** 2) / 103)
    ci = nps_interval(50, 30, 20)
    assert ci.estimate == pytest.approx(30.0)
    assert (ci.low, ci.high) == (pytest.approx(100 * (pp - pd) - half, abs=1e-4),
                                 pytest.approx(100 * (pp - pd) + half, abs=1e-4))


def test_nps_interval_edges() -> None:
    assert nps_interval(10, 0, 0, method="wald") == (100.0, 100.0, 100.0, 10)  # why Wald is not the default
    assert nps_interval(10, 0, 0).low < 80.0
    empty = nps_interval(0, 0, 0)
    assert math.isnan(empty.estimate) and (empty.low, empty.high) == (-100.0, 100.0)
    ci = nps_interval(3, 0, 1)
    assert -100 <= ci.low <= ci.high <= 100


@pytest.mark.parametrize("shares", [(0.5, 0.3, 0.2), (0.8, 0.15, 0.05), (0.2, 0.2, 0.6)])
def test_adjusted_wald_covers_the_true_nps_at_small_n_where_wald_does_not(
        shares: tuple[float, float, float]) -> None:
    rng = random.Random(20161)
    true_nps = 100 * (shares[0] - shares[2])
    hits = {"adjusted-wald": 0, "wald": 0}
    runs = 3000
    for _ in range(runs):
        draws = rng.choices(range(3), weights=shares, k=12)
        counts = (draws.count(0), draws.count(1), draws.count(2))
        for method in hits:
            hits[method] += nps_interval(*counts, method=method).contains(true_nps)  # type: ignore[arg-type]
    coverage = {m: h / runs for m, h in hits.items()}
    assert coverage["adjusted-wald"] >= 0.925, coverage
    assert abs(coverage["adjusted-wald"] - 0.95) < abs(coverage["wald"] - 0.95), coverage


def test_nps_difference_variances_add() -> None:
    d = nps_diff_interval((50, 30, 20), (40, 30, 30))
    half = 100 * 1.959964 * math.sqrt(nps_variance(50, 30, 20) + nps_variance(40, 30, 30))
    assert d.estimate == pytest.approx(20.0)
    assert d.low == pytest.approx(20 - half, abs=1e-4)
    assert d.high == pytest.approx(20 + half, abs=1e-4)


# --------------------------------------------------------------------- properties

counts = st.integers(min_value=0, max_value=5000)
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@st.composite
def proportion(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=5000))
    return draw(st.integers(min_value=0, max_value=n)), n


@given(proportion(), confidences)
def test_wilson_contains_estimate_within_unit_interval(xn: tuple[int, int], conf: float) -> None:
    x, n = xn
    ci = wilson_interval(x, n, conf)
    assert 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0
    assert ci.high > ci.low  # never degenerate


@given(proportion())
def test_wilson_is_symmetric_under_relabelling(xn: tuple[int, int]) -> None:
    x, n = xn
    a, b = wilson_interval(x, n), wilson_interval(n - x, n)
    assert a.low == pytest.approx(1 - b.high, abs=1e-12)
    assert a.high == pytest.approx(1 - b.low, abs=1e-12)


@given(proportion(), st.integers(min_value=2, max_value=20))
def test_wilson_narrows_with_n(xn: tuple[int, int], k: int) -> None:
    x, n = xn
    assert wilson_interval(k * x, k * n).width < wilson_interval(x, n).width


@given(proportion(), confidences, confidences)
def test_wilson_widens_with_confidence(xn: tuple[int, int], c1: float, c2: float) -> None:
    assume(c1 < c2)
    x, n = xn
    assert wilson_interval(x, n, c1).width < wilson_interval(x, n, c2).width


@given(proportion(), proportion(), confidences)
def test_newcombe_contains_difference_within_bounds(
    a: tuple[int, int], b: tuple[int, int], conf: float
) -> None:
    ci = newcombe_diff_interval(*a, *b, confidence=conf)
    assert -1.0 <= ci.low <= ci.estimate <= ci.high <= 1.0


@given(proportion(), proportion())
def test_newcombe_antisymmetric_under_swap(a: tuple[int, int], b: tuple[int, int]) -> None:
    ab, ba = newcombe_diff_interval(*a, *b), newcombe_diff_interval(*b, *a)
    assert ab.estimate == pytest.approx(-ba.estimate, abs=1e-12)
    assert ab.low == pytest.approx(-ba.high, abs=1e-12)
    assert ab.high == pytest.approx(-ba.low, abs=1e-12)


@given(proportion(), proportion(), st.integers(min_value=2, max_value=10))
def test_newcombe_narrows_with_n(a: tuple[int, int], b: tuple[int, int], k: int) -> None:
    small = newcombe_diff_interval(*a, *b)
    big = newcombe_diff_interval(k * a[0], k * a[1], k * b[0], k * b[1])
    assert big.width < small.width


@given(proportion())
def test_newcombe_of_identical_samples_straddles_zero(a: tuple[int, int]) -> None:
    ci = newcombe_diff_interval(*a, *a)
    assert ci.low < 0 < ci.high


nps_counts = st.tuples(counts, counts, counts).filter(lambda c: sum(c) > 0)


@given(nps_counts, confidences)
def test_nps_interval_contains_estimate_within_bounds(c: tuple[int, int, int], conf: float) -> None:
    ci = nps_interval(*c, confidence=conf)
    assert -100.0 <= ci.low <= ci.estimate <= ci.high <= 100.0
    assert ci.n == sum(c)


@given(nps_counts, st.integers(min_value=2, max_value=10))
def test_nps_interval_narrows_with_n(c: tuple[int, int, int], k: int) -> None:
    small, big = nps_interval(*c), nps_interval(*(k * x for x in c))
    assert big.estimate == pytest.approx(small.estimate)
    assert big.width <= small.width


@given(nps_counts)
def test_nps_is_antisymmetric_when_promoters_and_detractors_swap(c: tuple[int, int, int]) -> None:
    p, pa, d = c
    a, b = nps_interval(p, pa, d), nps_interval(d, pa, p)
    assert a.estimate == pytest.approx(-b.estimate, abs=1e-9)
    assert a.low == pytest.approx(-b.high, abs=1e-9)


@given(nps_counts, nps_counts)
def test_nps_difference_antisymmetric_and_bounded(
    a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    ab, ba = nps_diff_interval(a, b), nps_diff_interval(b, a)
    assert -200.0 <= ab.low <= ab.estimate <= ab.high <= 200.0
    assert ab.estimate == pytest.approx(-ba.estimate, abs=1e-9)
    assert ab.low == pytest.approx(-ba.high, abs=1e-9)


values = st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=2, max_size=200)


@given(values, confidences)
def test_mean_interval_contains_mean_and_respects_bounds(xs: list[float], conf: float) -> None:
    ci = mean_interval(*MeanSums.of(xs), confidence=conf, bounds=(-1.0, 1.0))
    assert -1.0 <= ci.low <= ci.estimate + 1e-12
    assert ci.estimate - 1e-12 <= ci.high <= 1.0
    assert ci.estimate == pytest.approx(sum(xs) / len(xs), abs=1e-9)


@given(values, values)
def test_mean_difference_antisymmetric(a: list[float], b: list[float]) -> None:
    ab = mean_diff_interval(MeanSums.of(a), MeanSums.of(b))
    ba = mean_diff_interval(MeanSums.of(b), MeanSums.of(a))
    assert ab.estimate == pytest.approx(-ba.estimate, abs=1e-9)
    assert ab.low == pytest.approx(-ba.high, abs=1e-6)
    assert ab.low <= ab.estimate <= ab.high


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
    with pytest.raises(ValueError):
        wilson_interval(-1, 4)
    with pytest.raises(ValueError):
        nps_interval(-1, 0, 0)
    w = wilson_interval(0, 0)
    assert math.isnan(w.estimate) and (w.low, w.high) == (0.0, 1.0)
    # Fractional (decayed) counts are accepted.
    assert 0 < wilson_interval(2.5, 10.25).estimate < 1
