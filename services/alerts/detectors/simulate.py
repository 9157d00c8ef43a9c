"""Simulation that measures the aggregate-drop promise (and a naive rule beside it).

Setting (the product promise): one scope with ``per_day`` responses a day (480), in-control
NPS 30 (promoters 50%, passives 30%, detractors 20%).  The detector learns its baseline from the
simulated data itself; nothing about the true rates is passed to it.

Measured:

* **False alarms per 1,000 in-control days** -- ``fa_streams`` independent streams, each with
  its own warm-up (uncounted: ``warmup_days`` days) followed by monitored days; alarms in
  monitored days are counted, the total is scaled to 1,000 days.
* **Detection delay** for a 10-point and a 20-point NPS drop (``shift/2`` points moved from
  promoters to detractors): ``change_reps`` independent streams, each in control for
  ``burn_in_days`` days, then the change at a uniformly random response of the next day.  The
  delay is the number of responses from the change to the first alarm at or after it (alarms
  before the change are counted separately as ``pre_change_alarms``).  Streams not detected
  within ``max_days_after`` days are censored at that cap (reported as ``undetected``).
* The same streams are scored by the **naive rule**: at each day's end, alarm when that day's
  NPS is significantly below the trailing 7 days' NPS (one-sided z-test with multinomial
  variances, ``naive_z``); its delay counts responses up to the end of the alarming day.

Run ``python -m services.alerts.detectors.simulate`` for the full benchmark (JSON on stdout;
30,000 in-control days in 300 streams of 100 days, 1,000 change streams per drop size; about a
minute on one core), or call :func:`simulate` with fewer days/reps in tests.  Arguments can be
overridden as ``key=value``, e.g. ``... simulate in_control_days=3000 change_reps=100``.

Both the false-alarm count and the delays are noisy: false alarms cluster in streams whose
young baseline happened to look good, so 1,000 simulated days give roughly +/-2 false alarms
per 1,000 days; a median over 1,000 changes is good to about +/-15 responses.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from .drop import DropConfig, new_state, update

IN_CONTROL = (0.50, 0.30, 0.20)  # promoters, passives, detractors -> NPS 30


def _rates_after_drop(points: float) -> tuple[float, float, float]:
    p, pa, d = IN_CONTROL
    move = points / 200.0
    return (p - move, pa, d + move)


def _day(
    rng: random.Random, rates: tuple[float, float, float], n: int, at: datetime
) -> list[tuple]:
    """One day's responses as (event_id, at, nps answer); answers 10 / 7 / 0 per category."""
    p, _, d = rates
    cut_d = 1.0 - d
    rnd = rng.random
    out = []
    for _ in range(n):
        u = rnd()
        out.append(("", at, 10 if u < p else (0 if u >= cut_d else 7)))
    return out


def _counts(day: list[tuple]) -> tuple[int, int, int]:
    p = pa = d = 0
    for _, _, v in day:
        if v >= 9:
            p += 1
        elif v >= 7:
            pa += 1
        else:
            d += 1
    return p, pa, d


def _naive_alarm(history: list[tuple[int, int, int]], z_crit: float) -> bool:
    """Yesterday (last entry) vs the 7 days before it: one-sided z-test on the NPS difference."""
    if len(history) < 8:
        return False
    y = history[-1]
    t = [sum(c[i] for c in history[-8:-1]) for i in range(3)]
    ny, nt = sum(y), sum(t)
    py, dy = y[0] / ny, y[2] / ny
    pt, dt = t[0] / nt, t[2] / nt
    var = (py + dy - (py - dy) ** 2) / ny + (pt + dt - (pt - dt) ** 2) / nt
    if var <= 0:
        return False
    return ((py - dy) - (pt - dt)) / math.sqrt(var) < -z_crit


def _summary(delays: list[int]) -> dict[str, float]:
    if not delays:
        return {"median": math.nan, "mean": math.nan, "p90": math.nan}
    s = sorted(delays)
    return {
        "median": float(statistics.median(s)),
        "mean": round(statistics.fmean(s), 1),
        "p90": float(s[min(len(s) - 1, int(0.9 * len(s)))]),
    }


def simulate(
    *,
    in_control_days: int = 30_000,
    fa_streams: int = 300,
    warmup_days: int = 5,
    change_reps: int = 1_000,
    burn_in_days: int = 30,
    max_days_after: int = 10,
    per_day: int = 480,
    drops: tuple[float, ...] = (10.0, 20.0),
    naive_z: float = 2.326,
    seed: int = 20261128,
    config: DropConfig | None = None,
) -> dict[str, Any]:
    """Run the benchmark; returns a JSON-serialisable dict (see the module docstring)."""
    cfg = config or DropConfig(metric="nps", shift=10.0)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    day0 = datetime(2026, 1, 1, tzinfo=UTC)

    # ---- false alarms in control
    det_fa = naive_fa = 0
    monitored = 0
    days_per_stream = max(1, in_control_days // fa_streams)
    for _ in range(fa_streams):
        st = new_state(cfg)
        hist: list[tuple[int, int, int]] = []
        for d in range(warmup_days + days_per_stream):
            day = _day(rng, IN_CONTROL, per_day, day0 + timedelta(days=d))
            st, decisions = update(cfg, st, day)
            hist.append(_counts(day))
            del hist[:-8]
            if d >= warmup_days:
                det_fa += len(decisions)
                naive_fa += _naive_alarm(hist, naive_z)
                monitored += 1
    t_fa = time.perf_counter() - t0

    # ---- detection delays
    out_drops: dict[str, Any] = {}
    for points in drops:
        after = _rates_after_drop(points)
        det_delays: list[int] = []
        naive_delays: list[int] = []
        pre_alarms = 0
        undetected_det = undetected_naive = 0
        for _ in range(change_reps):
            st = new_state(cfg)
            hist = []
            for d in range(burn_in_days):
                day = _day(rng, IN_CONTROL, per_day, day0 + timedelta(days=d))
                st, decisions = update(cfg, st, day)
                pre_alarms += len(decisions)
                hist.append(_counts(day))
                del hist[:-8]
            offset = rng.randrange(per_day)
            change_pos = st.n_seen + offset
            det_delay = naive_delay = None
            for k in range(max_days_after + 1):
                at = day0 + timedelta(days=burn_in_days + k)
                if k == 0:
                    day = _day(rng, IN_CONTROL, offset, at) + _day(rng, after, per_day - offset, at)
                else:
                    day = _day(rng, after, per_day, at)
                if det_delay is None:
                    st, decisions = update(cfg, st, day)
                    for dec in decisions:
                        if dec.position > change_pos:
                            det_delay = dec.position - change_pos
                            break
                        pre_alarms += 1
                hist.append(_counts(day))
                del hist[:-8]
                if naive_delay is None and _naive_alarm(hist, naive_z):
                    naive_delay = (k + 1) * per_day - offset
                if det_delay is not None and naive_delay is not None:
                    break
            cap = (max_days_after + 1) * per_day - offset
            if det_delay is None:
                undetected_det += 1
                det_delay = cap
            if naive_delay is None:
                undetected_naive += 1
                naive_delay = cap
            det_delays.append(det_delay)
            naive_delays.append(naive_delay)
        out_drops[f"{points:g}"] = {
            "detector": {**_summary(det_delays), "undetected": undetected_det},
            "naive": {**_summary(naive_delays), "undetected": undetected_naive},
            "pre_change_alarms": pre_alarms,
            "reps": change_reps,
        }

    elapsed = time.perf_counter() - t0
    scale = 1000.0 / monitored if monitored else math.nan
    return {
        "setting": {
            "per_day": per_day,
            "in_control_rates": IN_CONTROL,
            "monitored_in_control_days": monitored,
            "fa_streams": fa_streams,
            "warmup_days": warmup_days,
            "burn_in_days": burn_in_days,
            "change_reps": change_reps,
            "naive_z": naive_z,
            "seed": seed,
            "config": asdict(cfg),
        },
        "false_alarms_per_1000_days": {
            "detector": round(det_fa * scale, 2),
            "naive": round(naive_fa * scale, 2),
            "detector_count": det_fa,
            "naive_count": naive_fa,
        },
        "delay_responses": out_drops,
        "elapsed_seconds": round(elapsed, 2),
        "elapsed_false_alarm_part_seconds": round(t_fa, 2),
    }


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    kwargs: dict[str, Any] = {}
    for a in args:  # e.g. in_control_days=300 change_reps=50 seed=1
        k, _, v = a.partition("=")
        kwargs[k] = float(v) if k == "naive_z" else int(v)
    print(json.dumps(simulate(**kwargs), indent=2))


if __name__ == "__main__":
    main()
