"""From rule models to detector configurations, per scope (overrides applied)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.alert import Severity
from services.alerts.detectors.churn import ChurnConfig
from services.alerts.detectors.drop import DropConfig
from services.alerts.detectors.surge import SurgeConfig

from .models import (
    DEFAULT_SHIFT,
    DETECTOR_METRIC,
    ChurnParams,
    ChurnRule,
    DropParams,
    DropRule,
    RuleSet,
    SurgeParams,
    SurgeRule,
)

AnyRule = DropRule | SurgeRule | ChurnRule
DetectorConfig = DropConfig | SurgeConfig | ChurnConfig

_PARAMS: dict[str, type[BaseModel]] = {"aggregate_drop": DropParams, "theme_surge": SurgeParams, "churn_risk": ChurnParams}


def detector_config(rule: AnyRule, params: dict[str, Any], min_n: int | None) -> DetectorConfig:
    """The detector configuration for ``rule`` with these (already merged) parameters.

    Raises ``ValueError`` with the detector's own message when the combination is invalid.
    """
    if isinstance(rule, DropRule):
        kwargs = dict(params)
        kwargs.setdefault("shift", DEFAULT_SHIFT[rule.metric])
        return DropConfig(metric=DETECTOR_METRIC[rule.metric], rule=rule.name,  # type: ignore[arg-type]
                          min_n=min_n if min_n is not None else rule.min_n, **kwargs)
    if isinstance(rule, SurgeRule):
        return SurgeConfig(min_window_negatives=min_n if min_n is not None else rule.min_n, **params)
    return ChurnConfig(**params)


@dataclass(frozen=True, slots=True)
class Effective:
    """A rule as it applies to one scope, after the matching overrides."""

    enabled: bool
    severity: Severity
    config: DetectorConfig


def effective(ruleset: RuleSet, rule: AnyRule, labels: dict[str, str]) -> Effective:
    """Apply the overrides whose matchers all hold for ``labels`` (in file order)."""
    enabled = rule.enabled
    severity = rule.severity or ruleset.defaults.severity
    min_n = None if isinstance(rule, ChurnRule) else rule.min_n
    params = rule.params.model_dump(exclude_none=True)
    changed = False
    for ov in rule.overrides:
        if all(labels.get(k) == v for k, v in ov.match.items()):
            if ov.enabled is not None:
                enabled = ov.enabled
            if ov.severity is not None:
                severity = ov.severity
            if ov.min_n is not None:
                min_n = ov.min_n
            if ov.params:
                params.update(_PARAMS[rule.kind].model_validate(ov.params).model_dump(exclude_none=True))
            changed = True
    config = detector_config(rule, params, min_n) if changed else base_config(rule)
    return Effective(enabled=enabled, severity=severity, config=config)


_BASE_CACHE: dict[int, tuple[AnyRule, DetectorConfig]] = {}


def base_config(rule: AnyRule) -> DetectorConfig:
    """The rule's detector configuration without overrides (cached per rule object)."""
    hit = _BASE_CACHE.get(id(rule))
    if hit is not None and hit[0] is rule:
        return hit[1]
    config = detector_config(rule, rule.params.model_dump(exclude_none=True),
                             None if isinstance(rule, ChurnRule) else rule.min_n)
    if len(_BASE_CACHE) > 1024:
        _BASE_CACHE.clear()
    _BASE_CACHE[id(rule)] = (rule, config)
    return config


def may_apply(rule: AnyRule) -> bool:
    """False when the rule is disabled and no override can enable it for some scope."""
    return rule.enabled or any(ov.enabled for ov in rule.overrides)
