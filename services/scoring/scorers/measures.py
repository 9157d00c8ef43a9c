"""Standard service-quality measures, normalised to 0-100 (100 = best) on any answer scale.

NPS keeps its own 0-10 scale and categories (promoter 9-10, passive 7-8, detractor 0-6).
CES is read as ease: higher answers mean "the company made it easy" (CES 2.0 wording), so
a touchpoint asking "how much effort" must send a reversed scale (min > max is not allowed;
send value = max + min - answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.feedback import Metric, Response, Scale
from schemas.scored import NpsCategory

# Weights of the service-quality index (SQI). Relationship measures (NPS) and transaction
# measures (CSAT, ease) weigh most; free text is a weak, noisy signal. Renormalised over the
# measures an event has, so an event with only CSAT gets SQI = CSAT.
SQI_WEIGHTS: dict[str, float] = {"nps": 0.30, "csat": 0.30, "ces": 0.20, "rating": 0.10, "sentiment": 0.10}


def normalise(value: float, scale: Scale) -> float:
    """Linear map of `value` on `scale` to 0-100."""
    return (value - scale.min) / (scale.max - scale.min) * 100.0


def nps_category(answer: int) -> NpsCategory:
    if answer >= 9:
        return NpsCategory.promoter
    if answer >= 7:
        return NpsCategory.passive
    return NpsCategory.detractor


def is_top_box(value: float, scale: Scale) -> bool:
    """Top-two-box on scales with five or more steps (e.g. 4-5 of 1-5), top box otherwise."""
    if scale.max - scale.min >= 4:
        return value >= scale.max - 1
    return value >= scale.max


@dataclass(frozen=True)
class Measures:
    nps: int | None = None
    nps_category: NpsCategory | None = None
    csat: float | None = None
    csat_top_box: bool | None = None
    ces: float | None = None
    rating: float | None = None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def measures(responses: Sequence[Response]) -> Measures:
    """Combine answers; several answers to one metric are averaged (NPS: the first counts)."""
    by_metric: dict[Metric, list[Response]] = {}
    for response in responses:
        by_metric.setdefault(response.metric, []).append(response)
    nps = int(by_metric[Metric.nps][0].value) if Metric.nps in by_metric else None
    csats = by_metric.get(Metric.csat, [])
    return Measures(
        nps=nps,
        nps_category=nps_category(nps) if nps is not None else None,
        csat=_mean([normalise(r.value, r.effective_scale) for r in csats]),
        csat_top_box=is_top_box(csats[0].value, csats[0].effective_scale) if csats else None,
        ces=_mean([normalise(r.value, r.effective_scale) for r in by_metric.get(Metric.ces, [])]),
        rating=_mean([normalise(r.value, r.effective_scale) for r in by_metric.get(Metric.rating, [])]),
    )


def service_quality_index(m: Measures, sentiment: float | None) -> float | None:
    """Weighted mean of the available measures on 0-100; None when there is none."""
    parts = {
        "nps": m.nps * 10.0 if m.nps is not None else None,
        "csat": m.csat,
        "ces": m.ces,
        "rating": m.rating,
        "sentiment": (sentiment + 1.0) * 50.0 if sentiment is not None else None,
    }
    present = {name: value for name, value in parts.items() if value is not None}
    if not present:
        return None
    total_weight = sum(SQI_WEIGHTS[name] for name in present)
    return sum(SQI_WEIGHTS[name] * value for name, value in present.items()) / total_weight
