"""What every detector returns: a :class:`Decision` carrying the evidence for one alert.

The alerts service turns a decision into an ``schemas.alert.Alert`` (it owns ids, fingerprints,
severity and labels); :meth:`Decision.evidence_fields` uses exactly the field names of
``schemas.alert.AlertEvidence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_EXAMPLES = 20  # AlertEvidence.example_event_ids has max_length=20


@dataclass(frozen=True, slots=True)
class Decision:
    """One detector firing, with enough evidence for a sceptical reader to check it.

    ``kind`` is an ``AlertKind`` value (``aggregate_drop``, ``theme_surge``, ``churn_risk``).
    ``interval_low``/``interval_high`` bound the *change* (observed - baseline) at 95% unless
    the detector's config says otherwise.  ``position`` is the detector's running response
    count at the firing observation (used by backtests to measure delays).
    """

    kind: str
    rule: str
    detector_version: str
    metric: str
    observed: float | None
    baseline: float | None
    n: int
    baseline_n: int
    interval_low: float | None
    interval_high: float | None
    window_start: datetime | None
    window_end: datetime | None
    example_event_ids: tuple[str, ...] = ()
    details: dict[str, float | str] = field(default_factory=dict)
    at: datetime | None = None
    position: int = 0
    subject: str | None = None  # e.g. the theme or the customer id the decision is about

    def evidence_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``schemas.alert.AlertEvidence``."""
        return {
            "metric": self.metric,
            "observed": self.observed,
            "baseline": self.baseline,
            "n": max(0, int(self.n)),
            "baseline_n": max(0, int(self.baseline_n)),
            "interval_low": self.interval_low,
            "interval_high": self.interval_high,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "example_event_ids": [e for e in self.example_event_ids if e][:MAX_EXAMPLES],
            "details": dict(self.details),
        }

    def to_evidence(self):  # type: ignore[no-untyped-def]
        """Build the ``AlertEvidence`` model (imported lazily to keep detectors light)."""
        from schemas.alert import AlertEvidence

        return AlertEvidence(**self.evidence_fields())
