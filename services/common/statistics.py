"""Interval estimates shared by the stream, the alerts and the tests.

Pure Python (``math`` and ``statistics.NormalDist`` only), no I/O, no state.  Every function
returns a small named tuple so callers can both unpack it and read it by name:

* :class:`Interval` ``(estimate, low, high, n)`` -- one sample.
* :class:`DiffInterval` ``(estimate, low, high, n1, n2)`` -- difference ``sample1 - sample2``
  of two independent samples.

Functions
---------
``z_for_confidence(confidence)``
    Two-sided standard-normal quantile, e.g. 1.959964 for 0.95.
``t_quantile(p, df)``
    Student-t quantile (pure Python: regularised incomplete beta + bisection).
``wilson_interval(successes, n, confidence=0.95)``
    Wilson (1927) score interval for a proportion (Newcombe 1998a, method 3).
``newcombe_diff_interval(x1, n1, x2, n2, confidence=0.95)``
    Newcombe's hybrid score interval for ``p1 - p2`` of two independent proportions
    (Newcombe 1998b, method 10): Wilson limits of each proportion combined by the
    "square-and-add" rule.
``nps_interval(promoters, passives, detractors, confidence=0.95, method="adjusted-wald")``
    NPS = 100 (p_P - p_D) with the multinomial variance
    Var(p_P - p_D) = (p_P + p_D - (p_P - p_D)^2) / n and a normal interval clipped to
    [-100, 100].  By default the interval is Rocks' adjusted Wald: 3/4 of a response is added
    to the promoters and to the detractors and 3 to n (so 3/2 to the passives) before the
    interval is computed, which keeps it honest for small n (the plain Wald interval of 3
    promoters out of 3 is [100, 100]); ``method="wald"`` gives the plain one.
``nps_diff_interval(a, b, confidence=0.95)``
    NPS(a) - NPS(b) for two independent samples given as (promoters, passives, detractors);
    the variances add; clipped to [-200, 200].
``mean_interval(n, total, total_sq, confidence=0.95, method="t", bounds=None)``
    Mean from running sums (n, sum, sum of squares) with a t (default) or normal interval,
    optionally clipped to the scale's bounds, e.g. (0, 100) for CSAT or (-1, 1) for sentiment.
``mean_diff_interval(a, b, confidence=0.95, method="t")``
    Welch interval for mean(a) - mean(b) from two running-sum triples.

Counts may be floats (e.g. exponentially decayed baseline counts); they are treated as if they
were observed counts.  Proportions are on the 0..1 scale, NPS on the -100..100 scale.

References
----------
* E. B. Wilson (1927), Probable inference, the law of succession, and statistical inference.
  JASA 22, 209-212.
* R. G. Newcombe (1998a), Two-sided confidence intervals for the single proportion: comparison
  of seven methods. Stat. Med. 17, 857-872 (Table I, method 3).
* R. G. Newcombe (1998b), Interval estimation for the difference between independent
  proportions: comparison of eleven methods. Stat. Med. 17, 873-890 (Table II, method 10).
* B. Rocks (2016), Interval estimation for the "net promoter score". The American
  Statistician 70(4), 365-372 (the multinomial variance of p_P - p_D; the adjusted Wald
  interval, which it found to have the best coverage together with an iterative score method).
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist
from typing import Literal, NamedTuple

__all__ = [
    "NPS_PSEUDO_RESPONSES",
    "DiffInterval",
    "Interval",
    "MeanSums",
    "mean_diff_interval",
    "mean_interval",
    "newcombe_diff_interval",
    "nps_diff_interval",
    "nps_interval",
    "nps_variance",
    "t_quantile",
    "wilson_interval",
    "z_for_confidence",
]

_STD_NORMAL = NormalDist()


class Interval(NamedTuple):
    """A point estimate with its two-sided interval, from a sample of size ``n``."""

    estimate: float
    low: float
    high: float
    n: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


class DiffInterval(NamedTuple):
    """``sample1 - sample2`` with its two-sided interval; ``n1``/``n2`` are the sample sizes."""

    estimate: float
    low: float
    high: float
    n1: float
    n2: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


class MeanSums(NamedTuple):
    """Running sums of a numeric score: count, sum and sum of squares."""

    n: float = 0.0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, x: float) -> MeanSums:
        return MeanSums(self.n + 1, self.total + x, self.total_sq + x * x)

    @classmethod
    def of(cls, values: list[float] | tuple[float, ...]) -> MeanSums:
        return cls(float(len(values)), math.fsum(values), math.fsum(v * v for v in values))


# --------------------------------------------------------------------------- quantiles


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def z_for_confidence(confidence: float = 0.95) -> float:
    """Two-sided standard-normal quantile: ``z`` with ``P(|Z| <= z) = confidence``."""
    _check_confidence(confidence)
    return _STD_NORMAL.inv_cdf(0.5 + confidence / 2.0)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (``df`` may be fractional)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df!r}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if df > 1e7:
        return _STD_NORMAL.inv_cdf(p)
    lo, hi = 0.0, max(2.0 * _STD_NORMAL.inv_cdf(p), 1.0)
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------- proportions


def _check_counts(successes: float, n: float) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes!r}, n={n!r}")


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion ``successes / n``.

    The limits are the two roots ``p`` of ``(phat - p)^2 = z^2 p (1 - p) / n``; they always
    lie in [0, 1] and are never degenerate.  ``n == 0`` gives ``(nan, 0, 1)``.
    """
    _check_counts(successes, n)
    if n == 0:
        return Interval(math.nan, 0.0, 1.0, 0)
    z = z_for_confidence(confidence)
    z2 = z * z
    p = successes / n
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(max(p * (1.0 - p) / n + z2 / (4.0 * n * n), 0.0))
    low = max(0.0, centre - half)
    high = min(1.0, centre + half)
    # Exact endpoints at the boundaries (rounding would otherwise leave 1e-17 residues).
    if successes == 0:
        low = 0.0
    if successes == n:
        high = 1.0
    return Interval(p, min(low, p), max(high, p), n)


def newcombe_diff_interval(
    x1: float, n1: float, x2: float, n2: float, confidence: float = 0.95
) -> DiffInterval:
    """Newcombe's hybrid score interval for ``p1 - p2`` (Newcombe 1998b, method 10).

    With Wilson limits ``(l1, u1)`` and ``(l2, u2)``::

        low  = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)
        high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)

    An empty sample contributes the whole [0, 1] range (its point estimate is taken as 0.5 for
    the purpose of the estimate, which is then ``nan``).
    """
    a = wilson_interval(x1, n1, confidence)
    b = wilson_interval(x2, n2, confidence)
    if n1 == 0 or n2 == 0:
        return DiffInterval(math.nan, a.low - b.high, a.high - b.low, n1, n2)
    p1, p2 = a.estimate, b.estimate
    d = p1 - p2
    low = d - math.hypot(p1 - a.low, b.high - p2)
    high = d + math.hypot(a.high - p1, p2 - b.low)
    return DiffInterval(d, max(-1.0, low), min(1.0, high), n1, n2)


# --------------------------------------------------------------------------- NPS


def _nps_parts(promoters: float, passives: float, detractors: float) -> tuple[float, float, float]:
    if promoters < 0 or passives < 0 or detractors < 0:
        raise ValueError("NPS counts must be non-negative")
    n = promoters + passives + detractors
    if n == 0:
        return 0.0, 0.0, 0.0
    return n, promoters / n, detractors / n


def nps_variance(promoters: float, passives: float, detractors: float) -> float:
    """Variance of the NPS *proportion difference* ``p_P - p_D`` (not x100), multinomial.

    ``(p_P + p_D - (p_P - p_D)^2) / n``; ``inf`` for an empty sample.
    """
    n, pp, pd = _nps_parts(promoters, passives, detractors)
    if n == 0:
        return math.inf
    return max(pp + pd - (pp - pd) ** 2, 0.0) / n


NpsMethod = Literal["adjusted-wald", "wald"]
# Rocks (2016): pseudo-responses added to promoters and detractors each (3/2 go to the passives).
NPS_PSEUDO_RESPONSES = 0.75


def nps_interval(
    promoters: float, passives: float, detractors: float, confidence: float = 0.95,
    method: NpsMethod = "adjusted-wald",
) -> Interval:
    """NPS = 100 (p_P - p_D) of the observed counts, with a normal interval on the multinomial variance.

    ``adjusted-wald`` (default) computes the interval from the counts plus pseudo-responses
    (:data:`NPS_PSEUDO_RESPONSES` promoters and detractors, twice that many passives), so a small
    or one-sided sample gets a wide interval instead of a degenerate one; the interval is
    widened to contain the observed estimate where the adjustment would exclude it (an extreme
    sample at low confidence).  Clipped to [-100, 100].  An empty sample gives
    ``(nan, -100, 100, 0)``.
    """
    n, pp, pd = _nps_parts(promoters, passives, detractors)
    if n == 0:
        return Interval(math.nan, -100.0, 100.0, 0)
    est = 100.0 * (pp - pd)
    if method == "adjusted-wald":
        k = NPS_PSEUDO_RESPONSES
        low, high = _wald_nps(promoters + k, passives + 2 * k, detractors + k, confidence)
        low, high = min(low, est), max(high, est)
    else:
        low, high = _wald_nps(promoters, passives, detractors, confidence)
    return Interval(est, max(-100.0, low), min(100.0, high), n)


def _wald_nps(promoters: float, passives: float, detractors: float,
              confidence: float) -> tuple[float, float]:
    _, pp, pd = _nps_parts(promoters, passives, detractors)
    centre = 100.0 * (pp - pd)
    half = 100.0 * z_for_confidence(confidence) * math.sqrt(nps_variance(promoters, passives, detractors))
    return centre - half, centre + half


def nps_diff_interval(
    a: tuple[float, float, float], b: tuple[float, float, float], confidence: float = 0.95
) -> DiffInterval:
    """NPS(a) - NPS(b) for independent samples ``a``/``b`` = (promoters, passives, detractors).

    Var = Var_a + Var_b (multinomial variances); normal interval clipped to [-200, 200].
    """
    na, ppa, pda = _nps_parts(*a)
    nb, ppb, pdb = _nps_parts(*b)
    if na == 0 or nb == 0:
        return DiffInterval(math.nan, -200.0, 200.0, na, nb)
    z = z_for_confidence(confidence)
    est = 100.0 * ((ppa - pda) - (ppb - pdb))
    half = 100.0 * z * math.sqrt(nps_variance(*a) + nps_variance(*b))
    return DiffInterval(est, max(-200.0, est - half), min(200.0, est + half), na, nb)


# --------------------------------------------------------------------------- means


def _mean_var(n: float, total: float, total_sq: float) -> tuple[float, float]:
    mean = total / n
    if n < 2:
        return mean, math.nan
    var = (total_sq - total * total / n) / (n - 1.0)
    return mean, max(var, 0.0)


def _quantile(confidence: float, df: float, method: str) -> float:
    _check_confidence(confidence)
    if method == "normal":
        return z_for_confidence(confidence)
    if method == "t":
        return t_quantile(0.5 + confidence / 2.0, df)
    raise ValueError(f"method must be 't' or 'normal', got {method!r}")


def mean_interval(
    n: float,
    total: float,
    total_sq: float,
    confidence: float = 0.95,
    method: Literal["t", "normal"] = "t",
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """Mean of a score from running sums with a t (``df = n - 1``) or normal interval.

    ``bounds`` clips the interval (and nothing else) to the scale, e.g. ``(0, 100)`` or
    ``(-1, 1)``.  ``n == 0`` gives ``nan`` everywhere (or the bounds); ``n == 1`` gives the
    value with an unbounded (or bounds-wide) interval.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    lo_b, hi_b = bounds if bounds is not None else (-math.inf, math.inf)
    if n == 0:
        return Interval(math.nan, lo_b if bounds else math.nan, hi_b if bounds else math.nan, 0)
    mean, var = _mean_var(n, total, total_sq)
    if n < 2:
        return Interval(mean, lo_b, hi_b, n)
    q = _quantile(confidence, n - 1.0, method)
    half = q * math.sqrt(var / n)
    return Interval(mean, max(lo_b, mean - half), min(hi_b, mean + half), n)


def mean_diff_interval(
    a: tuple[float, float, float],
    b: tuple[float, float, float],
    confidence: float = 0.95,
    method: Literal["t", "normal"] = "t",
) -> DiffInterval:
    """Welch interval for mean(a) - mean(b); ``a``/``b`` are (n, sum, sum of squares).

    Degrees of freedom by Welch-Satterthwaite for ``method="t"``.  Needs n >= 2 on both sides,
    otherwise the interval is unbounded.
    """
    na, sa, ssa = a
    nb, sb, ssb = b
    if na < 2 or nb < 2:
        est = (sa / na - sb / nb) if na > 0 and nb > 0 else math.nan
        return DiffInterval(est, -math.inf, math.inf, na, nb)
    ma, va = _mean_var(na, sa, ssa)
    mb, vb = _mean_var(nb, sb, ssb)
    est = ma - mb
    wa, wb = va / na, vb / nb
    se2 = wa + wb
    if se2 == 0.0:
        return DiffInterval(est, est, est, na, nb)
    denom = wa * wa / (na - 1.0) + wb * wb / (nb - 1.0)
    df = se2 * se2 / denom if denom > 0.0 else math.inf
    df = min(df, 1e9)  # beyond this t is the normal distribution
    q = _quantile(confidence, df, method)
    half = q * math.sqrt(se2)
    return DiffInterval(est, est - half, est + half, na, nb)
