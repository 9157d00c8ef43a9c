"""Aggregate-drop detector: a CUSUM against a learned, drag-resistant baseline.

What it answers: "has this scope's NPS (or detractor share, CSAT top-box share, mean
sentiment/CSAT) got worse, compared with what is normal *for this scope*?"

Method
------
* **Baseline learned from the data.**  The first ``warmup_n`` responses are pooled into the
  baseline (no alarms yet).  After that, responses are collected in blocks of ``block_n``; a
  block joins the baseline only after it has waited ``hold_n`` further responses *and* the
  CUSUM is not elevated (statistic below ``freeze_fraction * h``).  An alarm discards the
  open block and every waiting block that overlaps the alarm's window (the CUSUM's
  change-point estimate), so data from a change that gets detected does not enter the
  baseline; a change too small to be detected is absorbed only slowly.  The baseline is an exponentially decayed
  count (memory ``memory_n`` responses), so its effective size ``baseline_n`` is at most about
  ``memory_n`` and slow seasonal drift is followed.
* **Sequential detection.**  A one-sided CUSUM of the log-likelihood ratio of "baseline" vs
  "baseline worsened by ``shift``" (Page 1954; Lorden-optimal for that shift):

  - ``nps``: multinomial over promoter/passive/detractor; the alternative moves ``shift/2``
    NPS points from promoters to detractors (a ``shift``-point NPS drop), passives unchanged.
  - ``detractor_share``: Bernoulli (detractor yes/no); alternative ``p_D + shift``.
  - ``top_box``: Bernoulli (top box yes/no); alternative ``p_top - shift``.
  - ``mean``: normal mean with the learned variance; alternative ``mean - shift``.

  The decision threshold ``h`` is recomputed whenever the baseline changes, from Siegmund's
  approximation of the in-control average run length (ARL0, in responses) of a CUSUM with the
  step's mean and variance, *averaged over the baseline's estimation error* (the false-alarm
  rate ``1/ARL0`` is integrated over a normal error of the step mean with variance
  ``var(step) / n_eff``, ``n_eff`` the effective size of the decayed baseline).  A young
  baseline therefore gets a higher threshold.  Siegmund's formula is optimistic for these
  small discrete steps (for NPS 30 and a 10-point design shift, h = 6.35 is predicted to give
  ARL0 100,000 and measures about 76,000), so ``arl0`` is a *design* value: the default
  120,000 was chosen with :mod:`.simulate` to give about 6 false alarms per 1,000 days at 480
  responses a day with a learned baseline.
* **Evidence.**  On an alarm the window is the CUSUM's change-point estimate (the responses
  since the statistic last stood at 0); the decision reports the window's value against the
  baseline, the 95% interval of the change (NPS: multinomial normal interval; shares:
  Newcombe's hybrid score interval; means: Welch), ``n``/``baseline_n``, the window's first and
  last timestamps and up to 20 ids of the worst responses in the window.
* After an alarm the statistic restarts at 0.  With ``relearn_on_alarm=False`` (default) the
  baseline is kept, so a lasting drop fires again roughly every detection-delay responses (the
  service de-duplicates by fingerprint); with ``True`` the baseline is re-learned from scratch
  (the new level becomes normal after ``warmup_n`` responses).

Everything here is pure: :func:`update` never mutates its input state, takes time only from the
observations, and performs no I/O.  Usage::

    cfg = DropConfig(metric="nps")          # or "detractor_share" / "top_box" / "mean"
    state = new_state(cfg)                  # keep one per scope; DropState.copy() to snapshot
    state, decisions = update(cfg, state, [Observation("evt-1", at, 9), ...])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

from services.common.statistics import (
    mean_diff_interval,
    newcombe_diff_interval,
    nps_diff_interval,
)

from .decision import MAX_EXAMPLES, Decision
from .version import DETECTOR_VERSION

MetricName = Literal["nps", "detractor_share", "top_box", "mean"]

_SIEGMUND_OVERSHOOT = 1.166  # 2 * 0.583, Siegmund (1985) correction for the Gaussian walk


class Observation(NamedTuple):
    """One response as the drop detector sees it.

    ``value`` is the 0-10 NPS answer for ``nps``/``detractor_share``, a bool (or 0/1) for
    ``top_box``, and the score for ``mean``.  ``at`` is the response's event time.
    """

    event_id: str
    at: datetime | None
    value: float


@dataclass(frozen=True, slots=True)
class DropConfig:
    """Tuning of one aggregate-drop detector (one per scope and metric).

    ``shift`` is the worsening the CUSUM is tuned for, in the metric's own units: NPS points
    for ``nps`` (10 = a 10-point drop), an absolute share for ``detractor_share``/``top_box``
    (0.05 = five percentage points), score units for ``mean``.  Smaller shifts are still
    detected, later; larger ones sooner.
    """

    metric: MetricName = "nps"
    shift: float = 10.0
    arl0: float = 120_000.0
    warmup_n: int = 2_400
    memory_n: float = 50_000.0
    block_n: int = 240
    hold_n: int = 1_440
    freeze_fraction: float = 0.5
    min_n: int = 30
    relearn_on_alarm: bool = False
    discard_on_alarm: bool = True
    robust_h: bool = True
    confidence: float = 0.95
    min_sd: float = 1e-3  # mean metric: variance floor (score units)
    rule: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in ("nps", "detractor_share", "top_box", "mean"):
            raise ValueError(f"unknown metric {self.metric!r}")
        if self.shift <= 0:
            raise ValueError("shift must be positive (the size of the worsening to detect)")
        if self.arl0 <= 1 or self.warmup_n < 1 or self.block_n < 1 or self.memory_n <= 0:
            raise ValueError("arl0 > 1, warmup_n >= 1, block_n >= 1 and memory_n > 0 required")
        if not 0 < self.freeze_fraction <= 1:
            raise ValueError("freeze_fraction must be in (0, 1]")

    @property
    def rule_name(self) -> str:
        return self.rule or f"{self.metric}_drop_cusum"


@dataclass(slots=True)
class DropState:
    """Everything the detector remembers for one scope; small, copyable, serialisable.

    ``base`` holds decayed baseline counts: per category (``nps``: promoter, passive,
    detractor; shares: good, bad) or ``[weight, sum, sum_sq]`` for ``mean``.  ``weights``
    and ``h`` are derived from ``base`` and cached here; ``active`` turns true after warm-up.
    """

    n_seen: int = 0
    base: list[float] = field(default_factory=list)
    base_w2: float = 0.0
    active: bool = False
    weights: tuple[float, ...] = ()
    h: float = math.inf
    block: list[float] = field(default_factory=list)
    block_len: int = 0
    pending: list[tuple[int, tuple[float, ...]]] = field(default_factory=list)
    s: float = 0.0
    win: list[float] = field(default_factory=list)
    win_n: int = 0
    win_start: datetime | None = None
    win_end: datetime | None = None
    examples: list[str] = field(default_factory=list)
    alarms: int = 0

    def copy(self) -> DropState:
        return DropState(
            n_seen=self.n_seen,
            base=list(self.base),
            base_w2=self.base_w2,
            active=self.active,
            weights=self.weights,
            h=self.h,
            block=list(self.block),
            block_len=self.block_len,
            pending=list(self.pending),
            s=self.s,
            win=list(self.win),
            win_n=self.win_n,
            win_start=self.win_start,
            win_end=self.win_end,
            examples=list(self.examples),
            alarms=self.alarms,
        )


def _width(metric: str) -> int:
    return {"nps": 3, "detractor_share": 2, "top_box": 2, "mean": 3}[metric]


def new_state(config: DropConfig) -> DropState:
    """A fresh state: nothing learned yet (the detector stays silent for ``warmup_n``)."""
    w = _width(config.metric)
    return DropState(base=[0.0] * w, block=[0.0] * w, win=[0.0] * w)


def _baseline_n(config: DropConfig, base: list[float]) -> float:
    return base[0] if config.metric == "mean" else sum(base)


def baseline_n(config: DropConfig, state: DropState) -> float:
    """Effective number of responses behind the learned baseline."""
    return _baseline_n(config, state.base)


def baseline_value(config: DropConfig, state: DropState) -> float | None:
    """The learned baseline in the metric's reporting units (NPS points, share, mean)."""
    base = state.base
    n = _baseline_n(config, base)
    if n <= 0:
        return None
    if config.metric == "nps":
        return 100.0 * (base[0] - base[2]) / n
    if config.metric == "mean":
        return base[1] / base[0]
    return base[1] / n if config.metric == "detractor_share" else base[0] / n


# ----------------------------------------------------------------------------- parameters


# Standard-normal grid for averaging over the baseline's estimation error (z = -4 .. 4 in
# steps of 0.5; the trapezoid rule is very accurate for smooth integrands against a Gaussian).
_Z_GRID = [i / 2.0 for i in range(-8, 9)]
_Z_W = [math.exp(-z * z / 2.0) for z in _Z_GRID]
_Z_W = [w / sum(_Z_W) for w in _Z_W]


def _arl_siegmund(mu: float, var: float, b: float) -> float:
    """Siegmund's approximation to the ARL of a CUSUM with step mean ``mu``, variance ``var``
    and (overshoot-corrected) threshold ``b``: ``(e^-t + t - 1) / (2 mu^2 / var)``,
    ``t = 2 mu b / var``; ``b^2 / var`` when ``mu == 0``."""
    if abs(mu) < 1e-15:
        return b * b / var
    t = 2.0 * mu * b / var
    return (math.exp(min(-t, 700.0)) + t - 1.0) / (2.0 * mu * mu / var)


def _solve_h(mu0: float, var0: float, arl0: float, n_eff: float | None) -> float:
    """Threshold ``h`` giving an in-control ARL of about ``arl0`` responses.

    ``mu0``/``var0`` are the step's mean and variance under the learned baseline.  With
    ``n_eff`` (effective size of the baseline) the false-alarm *rate* ``1/ARL`` is averaged
    over the baseline's estimation error (the true step mean is ``mu0 + Z sd/sqrt(n_eff)``),
    which makes ``h`` larger while the baseline is young; ``n_eff=None`` treats the baseline as
    exact.
    """
    sd0 = math.sqrt(var0)
    rho = _SIEGMUND_OVERSHOOT * sd0
    target = 1.0 / arl0
    if n_eff is None or n_eff <= 0:
        shifts = [(0.0, 1.0)]
    else:
        e = sd0 / math.sqrt(n_eff)
        shifts = [(z * e, w) for z, w in zip(_Z_GRID, _Z_W, strict=True)]

    def fa_rate(h: float) -> float:
        return sum(w / _arl_siegmund(mu0 + dz, var0, h + rho) for dz, w in shifts)

    lo, hi = 0.05, 16.0
    while fa_rate(hi) > target and hi < 1e4:
        lo, hi = hi, hi * 2.0
    while hi - lo > 1e-3:
        mid = 0.5 * (lo + hi)
        if fa_rate(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _categorical_params(
    p0: list[float], p1: list[float], arl0: float, n_eff: float | None
) -> tuple[tuple[float, ...], float]:
    weights = []
    for a, b in zip(p0, p1, strict=True):
        weights.append(math.log(b / a) if a > 0 and b > 0 else 0.0)
    mean0 = sum(a * w for a, w in zip(p0, weights, strict=True))  # = -KL(p0 || p1)
    var0 = sum(a * w * w for a, w in zip(p0, weights, strict=True)) - mean0 * mean0
    return tuple(weights), _solve_h(min(mean0, -1e-12), max(var0, 1e-12), arl0, n_eff)


def _n_eff(config: DropConfig, state: DropState) -> float | None:
    if not config.robust_h or state.base_w2 <= 0:
        return None
    w = _baseline_n(config, state.base)
    return w * w / state.base_w2


def _derive(config: DropConfig, state: DropState) -> tuple[tuple[float, ...], float]:
    """CUSUM step weights and threshold from the baseline counts (with a small prior)."""
    m = config.metric
    base = state.base
    n_eff = _n_eff(config, state)
    if m == "mean":
        w, s, ss = base
        mu = s / w
        var = max((ss - s * s / w) / max(w - 1.0, 1.0), config.min_sd**2)
        d = config.shift
        # step = a * (mu - x) - c  ==  log N(x; mu - d, var) / N(x; mu, var)
        a = d / var
        c = d * d / (2.0 * var)
        return (a, c, mu), _solve_h(-c, d * d / var, config.arl0, n_eff)
    # Add half a response per category so no probability is exactly 0 or 1.
    tot = sum(base) + 0.5 * len(base)
    p0 = [(x + 0.5) / tot for x in base]
    if m == "nps":
        move = min(config.shift / 200.0, p0[0] * 0.99, (1.0 - p0[2]) * 0.99)
        p1 = [p0[0] - move, p0[1], p0[2] + move]
    else:  # binary: index 1 is the bad outcome (detractor / not top box)
        bad = min(p0[1] + config.shift, 0.999)
        p1 = [1.0 - bad, bad]
    return _categorical_params(p0, p1, config.arl0, n_eff)


def _fold(
    config: DropConfig, state: DropState, counts: tuple[float, ...] | list[float], n: int
) -> None:
    if state.active:
        decay = math.exp(-n / config.memory_n)
        state.base = [b * decay + c for b, c in zip(state.base, counts, strict=True)]
        state.base_w2 = state.base_w2 * decay * decay + n
    else:
        state.base = [b + c for b, c in zip(state.base, counts, strict=True)]
        state.base_w2 += n


# ----------------------------------------------------------------------------- the update


def update(
    config: DropConfig, state: DropState, observations: list[Observation] | list[tuple]
) -> tuple[DropState, list[Decision]]:
    """Feed observations (in arrival order); return the new state and any decisions.

    The input ``state`` is not modified.  Observations with ``value is None`` are skipped.
    """
    st = state.copy()
    decisions: list[Decision] = []
    metric = config.metric
    is_mean = metric == "mean"
    is_nps = metric == "nps"
    is_top = metric == "top_box"
    block_n = config.block_n
    freeze = config.freeze_fraction
    min_n = config.min_n

    # Hot loop: locals only; state is written back whenever it matters.
    s = st.s
    h = st.h
    weights = st.weights
    block = st.block
    win = st.win
    win_n = st.win_n
    n_seen = st.n_seen
    block_len = st.block_len
    examples = st.examples
    win_start = st.win_start
    win_end = st.win_end
    active = st.active
    if is_mean and active:
        a, c, mu = weights

    for obs in observations:
        eid, at, v = obs[0], obs[1], obs[2]
        if v is None:
            continue
        n_seen += 1
        if is_mean:
            x = float(v)
            block[0] += 1.0
            block[1] += x
            block[2] += x * x
        else:
            if is_nps:
                k = 2 if v <= 6 else (1 if v <= 8 else 0)
            elif is_top:
                k = 0 if v else 1
            else:
                k = 1 if v <= 6 else 0
            block[k] += 1.0
        block_len += 1

        if active:
            if is_mean:
                s += a * (mu - x) - c
                bad = x < mu
            else:
                s += weights[k]
                bad = k == len(weights) - 1
            if s <= 0.0:
                s = 0.0
                if win_n:
                    win = [0.0] * len(win)
                    win_n = 0
                    win_start = win_end = None
                    examples = []
            else:
                if is_mean:
                    win[0] += 1.0
                    win[1] += x
                    win[2] += x * x
                else:
                    win[k] += 1.0
                win_n += 1
                if win_start is None:
                    win_start = at
                win_end = at
                if bad and eid:
                    examples.append(eid)
                    if len(examples) > MAX_EXAMPLES:
                        del examples[0]
                if s > h and win_n >= min_n:
                    st.win, st.win_n, st.win_start, st.win_end, st.examples = (
                        win,
                        win_n,
                        win_start,
                        win_end,
                        examples,
                    )
                    decisions.append(_decision(config, st, s, h, at, n_seen))
                    st.alarms += 1
                    # Drop the data of the alarm's window (the CUSUM change-point estimate):
                    # every waiting block that overlaps it, and the open block.  Older waiting
                    # blocks predate the change and still join the baseline.
                    first = n_seen - win_n  # position just before the window began
                    if config.discard_on_alarm:
                        st.pending = [p for p in st.pending if p[0] <= first]
                    s = 0.0
                    win = [0.0] * len(win)
                    win_n = 0
                    win_start = win_end = None
                    examples = []
                    block = [0.0] * len(block)
                    block_len = 0
                    if config.relearn_on_alarm:
                        st.pending = []
                        st.base = [0.0] * len(st.base)
                        st.base_w2 = 0.0
                        st.active = active = False
                        st.weights, st.h = weights, h = (), math.inf
                    continue

        if block_len >= block_n:
            counts = tuple(block)
            block = [0.0] * len(block)
            block_len = 0
            if not active:
                _fold(config, st, counts, int(counts[0] if is_mean else sum(counts)))
                if _baseline_n(config, st.base) >= config.warmup_n:
                    st.active = active = True
                    st.weights, st.h = weights, h = _derive(config, st)
                    if is_mean:
                        a, c, mu = weights
            else:
                st.pending.append((n_seen, counts))
        if active and st.pending and s <= freeze * h and n_seen - st.pending[0][0] >= config.hold_n:
            changed = False
            while st.pending and n_seen - st.pending[0][0] >= config.hold_n:
                _, counts = st.pending.pop(0)
                _fold(config, st, counts, int(counts[0] if is_mean else sum(counts)))
                changed = True
            if changed:
                st.weights, st.h = weights, h = _derive(config, st)
                if is_mean:
                    a, c, mu = weights

    st.s = s
    st.block = block
    st.block_len = block_len
    st.win, st.win_n, st.win_start, st.win_end, st.examples = (
        win,
        win_n,
        win_start,
        win_end,
        examples,
    )
    st.n_seen = n_seen
    return st, decisions


# ----------------------------------------------------------------------------- evidence


def _decision(
    config: DropConfig, st: DropState, s: float, h: float, at: datetime | None, position: int
) -> Decision:
    m = config.metric
    base = st.base
    win = st.win
    conf = config.confidence
    extra: dict[str, float | str] = {}
    if m == "nps":
        ci = nps_diff_interval(tuple(win), tuple(base), conf)  # type: ignore[arg-type]
        bn = sum(base)
        observed = 100.0 * (win[0] - win[2]) / st.win_n
        baseline = 100.0 * (base[0] - base[2]) / bn
        metric = "nps"
        # The detractor share behind it, with Newcombe's interval for its rise.
        dci = newcombe_diff_interval(win[2], st.win_n, base[2], bn, conf)
        extra = {
            "detractor_share": win[2] / st.win_n,
            "detractor_share_baseline": base[2] / bn,
            "detractor_share_change_low": dci.low,
            "detractor_share_change_high": dci.high,
            "promoter_share": win[0] / st.win_n,
            "promoter_share_baseline": base[0] / bn,
        }
    elif m == "mean":
        ci = mean_diff_interval(tuple(win), tuple(base), conf)  # type: ignore[arg-type]
        bn = base[0]
        observed = win[1] / win[0]
        baseline = base[1] / base[0]
        metric = "mean"
    else:
        bn = sum(base)
        if m == "detractor_share":
            ci = newcombe_diff_interval(win[1], st.win_n, base[1], bn, conf)
            observed, baseline = win[1] / st.win_n, base[1] / bn
        else:  # top_box: report the top-box share itself
            ci = newcombe_diff_interval(win[0], st.win_n, base[0], bn, conf)
            observed, baseline = win[0] / st.win_n, base[0] / bn
        metric = m
    return Decision(
        kind="aggregate_drop",
        rule=config.rule_name,
        detector_version=DETECTOR_VERSION,
        metric=metric,
        observed=observed,
        baseline=baseline,
        n=st.win_n,
        baseline_n=round(bn),
        interval_low=ci.low,
        interval_high=ci.high,
        window_start=st.win_start,
        window_end=st.win_end,
        example_event_ids=tuple(st.examples),
        details={
            "cusum": round(s, 6),
            "threshold_h": round(h, 6),
            "shift": config.shift,
            "arl0": config.arl0,
            "confidence": conf,
            "alarm_number": float(st.alarms + 1),
            **extra,
        },
        at=at,
        position=position,
    )
