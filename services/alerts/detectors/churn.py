"""Individual churn-risk detector: one customer, two rules.

The text analysis (churn language, negation, sentiment) happens upstream; this detector only
combines the per-event flags it is given.  State is per customer (:class:`ChurnState`), small,
and can be dropped once :func:`is_idle` says so.

Rules
-----
``churn_intent_detractor``
    A single event where the customer states an intent to leave (``churn_intent``) *and* the
    event is a detractor (NPS 0-6).  Events without an NPS answer (``detractor is None``)
    count when the event is otherwise ``negative``.  A promoter or passive whose comment was
    flagged as churn intent does not fire (the score contradicts the text; the flag alone is
    too weak to page someone).
``repeated_negative_experiences``
    At least ``min_negative`` negative experiences of the same customer within ``window``
    (default 3 in 30 days) across at least ``min_touchpoints`` distinct touchpoints (default
    2): a pattern, not a single bad day with one channel.

Each rule fires at most once per customer per ``cooldown``; redelivered events (same
``event_id``) are ignored, so Kafka's at-least-once delivery cannot double-count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from .decision import MAX_EXAMPLES, Decision
from .version import DETECTOR_VERSION

RULE_INTENT = "churn_intent_detractor"
RULE_REPEATED = "repeated_negative_experiences"


class CustomerEvent(NamedTuple):
    """One scored event of one customer, reduced to what the rules need."""

    event_id: str
    at: datetime
    customer_id: str
    touchpoint: str
    negative: bool  # a negative experience: detractor, bottom-box CSAT, negative comment, ...
    churn_intent: bool = False
    detractor: bool | None = None  # None: the event carried no NPS answer


@dataclass(frozen=True, slots=True)
class ChurnConfig:
    window: timedelta = timedelta(days=30)
    min_negative: int = 3
    min_touchpoints: int = 2
    cooldown: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if self.min_negative < 1 or self.min_touchpoints < 1:
            raise ValueError("min_negative and min_touchpoints must be >= 1")


@dataclass(slots=True)
class ChurnState:
    """What the detector remembers about one customer."""

    customer_id: str = ""
    negatives: list[tuple[datetime, str, str]] = field(default_factory=list)  # (at, id, touchpoint)
    seen_ids: list[str] = field(default_factory=list)  # recent event ids, for de-duplication
    last_fired: dict[str, datetime] = field(default_factory=dict)

    def copy(self) -> ChurnState:
        return ChurnState(
            self.customer_id, list(self.negatives), list(self.seen_ids), dict(self.last_fired)
        )


def new_state(customer_id: str = "") -> ChurnState:
    return ChurnState(customer_id=customer_id)


_MAX_SEEN = 200


def _cooling(config: ChurnConfig, st: ChurnState, rule: str, at: datetime) -> bool:
    last = st.last_fired.get(rule)
    return last is not None and at - last < config.cooldown


def update(
    config: ChurnConfig, state: ChurnState, events: list[CustomerEvent] | CustomerEvent
) -> tuple[ChurnState, list[Decision]]:
    """Feed one customer's events (in time order); return the new state and decisions."""
    if isinstance(events, CustomerEvent):
        events = [events]
    st = state.copy()
    decisions: list[Decision] = []
    for ev in events:
        if st.customer_id and ev.customer_id != st.customer_id:
            raise ValueError(f"event for customer {ev.customer_id!r} fed to {st.customer_id!r}")
        st.customer_id = ev.customer_id
        if ev.event_id in st.seen_ids:
            continue
        st.seen_ids.append(ev.event_id)
        del st.seen_ids[: max(0, len(st.seen_ids) - _MAX_SEEN)]

        detractor_like = ev.detractor is True or (ev.detractor is None and ev.negative)
        if ev.churn_intent and detractor_like and not _cooling(config, st, RULE_INTENT, ev.at):
            st.last_fired[RULE_INTENT] = ev.at
            decisions.append(
                Decision(
                    kind="churn_risk",
                    rule=RULE_INTENT,
                    detector_version=DETECTOR_VERSION,
                    metric="churn_intent",
                    observed=1.0,
                    baseline=None,
                    n=1,
                    baseline_n=0,
                    interval_low=None,
                    interval_high=None,
                    window_start=ev.at,
                    window_end=ev.at,
                    example_event_ids=(ev.event_id,),
                    details={"customer_id": ev.customer_id, "touchpoint": ev.touchpoint},
                    at=ev.at,
                    subject=ev.customer_id,
                )
            )

        if ev.negative or detractor_like:
            st.negatives.append((ev.at, ev.event_id, ev.touchpoint))
            st.negatives.sort(key=lambda t: t[0])
        horizon = ev.at - config.window
        st.negatives = [t for t in st.negatives if t[0] > horizon]
        # A late event (several workers, partitions interleave) completes the window that ends
        # at the newest negative seen; in time order that is ev.at itself.
        end = max(ev.at, st.negatives[-1][0]) if st.negatives else ev.at
        recent = [t for t in st.negatives if end - config.window < t[0] <= end]
        touchpoints = sorted({t[2] for t in recent})
        if (
            (ev.negative or detractor_like)
            and len(recent) >= config.min_negative
            and len(touchpoints) >= config.min_touchpoints
            and not _cooling(config, st, RULE_REPEATED, ev.at)
        ):
            st.last_fired[RULE_REPEATED] = ev.at
            decisions.append(
                Decision(
                    kind="churn_risk",
                    rule=RULE_REPEATED,
                    detector_version=DETECTOR_VERSION,
                    metric="negative_experiences",
                    observed=float(len(recent)),
                    baseline=float(config.min_negative),
                    n=len(recent),
                    baseline_n=0,
                    interval_low=None,
                    interval_high=None,
                    window_start=recent[0][0],
                    window_end=recent[-1][0],
                    example_event_ids=tuple(t[1] for t in recent[-MAX_EXAMPLES:]),
                    details={
                        "customer_id": ev.customer_id,
                        "touchpoints": ",".join(touchpoints),
                        "distinct_touchpoints": float(len(touchpoints)),
                        "window_days": config.window.total_seconds() / 86400.0,
                    },
                    at=ev.at,
                    subject=ev.customer_id,
                )
            )
    return st, decisions


def is_idle(config: ChurnConfig, state: ChurnState, now: datetime) -> bool:
    """True when the state carries nothing that could matter after ``now`` (safe to drop)."""
    if any(t[0] > now - config.window for t in state.negatives):
        return False
    return all(now - at >= config.cooldown for at in state.last_fired.values())
