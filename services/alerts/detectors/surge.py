"""Theme-surge detector: a theme's share of negative comments rising significantly.

What it answers: "are complaints about *this* theme a larger part of today's negative feedback
than they normally are for this scope?"  Shares, not volumes, so a busy day with
proportionally more of everything does not fire, and a theme that grows while overall
negativity falls still does.

Rule ``theme_surge_share`` -- evaluated for each theme when a tumbling window (``window``,
default one day, aligned to the Unix epoch) closes:

* current share ``x / n``: negative comments in the window mentioning the theme negatively,
  over all negative comments in the window;
* baseline share ``xb / nb``: the same over the previous ``baseline_windows`` closed windows
  (default 28);
* fire when all of

  - ``n >= min_window_negatives`` (30) and ``x >= min_theme_count`` (8): enough to say
    anything,
  - ``nb >= min_baseline_negatives`` (500): there is a baseline,
  - the lower end of Newcombe's hybrid score interval for ``x/n - xb/nb`` at ``confidence``
    (default 99.5%, because many themes are tested every window; the score interval is
    somewhat liberal in the upper tail at small counts) is above ``min_lift``,
  - ``x/n >= min_ratio * (xb + 0.5) / (nb + 1)`` (a material relative rise, not just a
    statistically detectable one).

A theme absent from the baseline (new theme) is handled naturally (``xb = 0``).  Closed windows
enter the baseline whether or not they fired; a surge lasting many windows therefore keeps
firing for a while and then slowly becomes the new normal (by design: the service de-duplicates
by fingerprint).

Pure: :func:`update` does not modify its input, takes time from the comments (and an optional
``now`` to close windows without traffic) and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from services.common.statistics import newcombe_diff_interval

from .decision import MAX_EXAMPLES, Decision
from .version import DETECTOR_VERSION

RULE = "theme_surge_share"


class CommentObservation(NamedTuple):
    """One comment: is it negative, and which themes it mentions negatively."""

    event_id: str
    at: datetime
    negative: bool
    themes: tuple[str, ...] | frozenset[str] | list[str] = ()


@dataclass(frozen=True, slots=True)
class SurgeConfig:
    window: timedelta = timedelta(days=1)
    baseline_windows: int = 28
    min_window_negatives: int = 30
    min_theme_count: int = 8
    min_baseline_negatives: int = 500
    min_ratio: float = 1.5
    min_lift: float = 0.0
    confidence: float = 0.995

    def __post_init__(self) -> None:
        if self.window <= timedelta(0) or self.baseline_windows < 1:
            raise ValueError("window must be positive and baseline_windows >= 1")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be in (0, 1)")


@dataclass(slots=True)
class WindowCounts:
    start: datetime
    negatives: int = 0
    themes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class SurgeState:
    """Per-scope memory: the open window (with example ids) and the closed windows' counts."""

    current: WindowCounts | None = None
    examples: dict[str, list[str]] = field(default_factory=dict)
    history: list[WindowCounts] = field(default_factory=list)

    def copy(self) -> SurgeState:
        cur = self.current
        return SurgeState(
            current=None
            if cur is None
            else WindowCounts(cur.start, cur.negatives, dict(cur.themes)),
            examples={k: list(v) for k, v in self.examples.items()},
            history=list(self.history),  # closed windows are never mutated
        )


def new_state() -> SurgeState:
    return SurgeState()


def _window_start(at: datetime, window: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC) if at.tzinfo else datetime(1970, 1, 1)
    return at - ((at - epoch) % window)


def _close(config: SurgeConfig, st: SurgeState, decisions: list[Decision]) -> None:
    cur = st.current
    assert cur is not None
    decisions.extend(evaluate(config, st))
    st.history.append(cur)
    del st.history[: max(0, len(st.history) - config.baseline_windows)]
    st.current = WindowCounts(cur.start + config.window)
    st.examples = {}


def _advance(
    config: SurgeConfig, st: SurgeState, until: datetime, decisions: list[Decision]
) -> None:
    """Close every window that ends at or before ``until``."""
    if st.current is None:
        return
    while st.current.start + config.window <= until:
        if st.current.negatives == 0 and until - st.current.start > config.window * (
            config.baseline_windows + 1
        ):
            # A long silence: jump ahead, recording empty windows only as far as they matter.
            target = _window_start(until, config.window)
            empties = min(config.baseline_windows, int((target - st.current.start) / config.window))
            for i in range(empties):
                st.history.append(WindowCounts(target - config.window * (empties - i)))
            del st.history[: max(0, len(st.history) - config.baseline_windows)]
            st.current = WindowCounts(target)
            st.examples = {}
            continue
        _close(config, st, decisions)


def evaluate(config: SurgeConfig, state: SurgeState) -> list[Decision]:
    """Apply the rule to the open window against the closed ones (no state change).

    Called automatically when a window closes; a caller may also use it for an early look
    (knowing that repeated looks at a growing window raise the false-alarm rate).
    """
    cur = state.current
    if cur is None or cur.negatives < config.min_window_negatives:
        return []
    nb = sum(w.negatives for w in state.history)
    if nb < config.min_baseline_negatives:
        return []
    n = cur.negatives
    out: list[Decision] = []
    for theme in sorted(cur.themes):
        x = cur.themes[theme]
        if x < config.min_theme_count:
            continue
        xb = sum(w.themes.get(theme, 0) for w in state.history)
        share, base_share = x / n, xb / nb
        if share < config.min_ratio * (xb + 0.5) / (nb + 1.0):
            continue
        ci = newcombe_diff_interval(x, n, xb, nb, config.confidence)
        if ci.low <= config.min_lift:
            continue
        out.append(
            Decision(
                kind="theme_surge",
                rule=RULE,
                detector_version=DETECTOR_VERSION,
                metric="theme_share_of_negative",
                observed=share,
                baseline=base_share,
                n=n,
                baseline_n=nb,
                interval_low=ci.low,
                interval_high=ci.high,
                window_start=cur.start,
                window_end=cur.start + config.window,
                example_event_ids=tuple(state.examples.get(theme, ())[:MAX_EXAMPLES]),
                details={
                    "theme": theme,
                    "count": float(x),
                    "baseline_count": float(xb),
                    "baseline_windows": float(len(state.history)),
                    "ratio": share / ((xb + 0.5) / (nb + 1.0)),
                    "confidence": config.confidence,
                },
                at=cur.start + config.window,
                subject=theme,
            )
        )
    return out


def update(
    config: SurgeConfig,
    state: SurgeState,
    comments: list[CommentObservation] | list[tuple],
    now: datetime | None = None,
) -> tuple[SurgeState, list[Decision]]:
    """Feed comments (roughly in time order) and optionally the current time.

    Comments older than the open window are counted in the open window (late arrivals are not
    re-opened).  Returns the new state and the decisions of every window that closed.
    """
    st = state.copy()
    decisions: list[Decision] = []
    for c in comments:
        eid, at, negative, themes = c[0], c[1], c[2], c[3]
        if st.current is None:
            st.current = WindowCounts(_window_start(at, config.window))
        _advance(config, st, at, decisions)
        if not negative:
            continue
        cur = st.current
        assert cur is not None
        cur.negatives += 1
        for theme in set(themes):
            cur.themes[theme] = cur.themes.get(theme, 0) + 1
            ex = st.examples.setdefault(theme, [])
            if len(ex) < MAX_EXAMPLES and eid:
                ex.append(eid)
    if now is not None:
        _advance(config, st, now, decisions)
    return st, decisions
