"""The rules file as pydantic models: detectors, scopes, overrides, severities and routing.

A rules file (YAML) has four top-level keys::

    version: 1
    defaults:  {scopes: [[touchpoint, unit, segment], [touchpoint, unit]], severity: warning}
    rules:     [ ...one entry per alert rule (kind: aggregate_drop | theme_surge | churn_risk)... ]
    routing:   {receivers: [...], default: {...}, routes: [...], inhibit: [...], digests: [...],
                escalation: [...]}

See ``default_rules.yaml`` next to this module for a complete, commented example. Every model
forbids unknown keys, so a typo is an error with its line number rather than a silent default.
Semantic checks that span several parts of the file (unique rule names, receivers that routes
name, label names in matchers) are in :func:`semantic_errors`; the loader reports them with the
same path/line format as schema errors.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from schemas.alert import AlertKind, Severity
from schemas.feedback import Touchpoint

# ----------------------------------------------------------------------------- value types

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([wdhms]|ms))+\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|[wdhms])")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: Any) -> timedelta:
    """``30s``, ``5m``, ``4h``, ``7d``, ``2w``, ``1h30m`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic reports ValueErrors as validation errors
        raise ValueError(  # noqa: TRY004
            "a duration is a number of seconds or a string like '30s', '5m', '4h', '7d'"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    else:
        raise ValueError(
            f"invalid duration {value!r}: use a number of seconds or e.g. '30s', '5m', '4h', '7d'"
        )
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
RuleName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=80)]
LabelName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
Matchers = dict[str, str]

#: Labels a scope can be made of (taken from the feedback event).
SCOPE_LABELS: tuple[str, ...] = ("touchpoint", "unit", "segment", "source")
#: Every label an alert can carry, i.e. what matchers, group_by and inhibit.equal may name.
ALERT_LABELS: frozenset[str] = frozenset(
    {*SCOPE_LABELS, "rule", "kind", "severity", "metric", "theme", "customer_id", "signal"}
)
#: Labels whose values are enumerations (checked in matchers).
ENUM_LABELS: dict[str, frozenset[str]] = {
    "touchpoint": frozenset(t.value for t in Touchpoint),
    "kind": frozenset(k.value for k in AlertKind),
    "severity": frozenset(s.value for s in Severity),
}

DropMetric = Literal["nps", "detractor_share", "csat_top_box", "sentiment", "csat", "ces", "sqi"]
#: The drop detector's metric behind each rule metric.
DETECTOR_METRIC: dict[str, str] = {
    "nps": "nps",
    "detractor_share": "detractor_share",
    "csat_top_box": "top_box",
    "sentiment": "mean",
    "csat": "mean",
    "ces": "mean",
    "sqi": "mean",
}
#: Default design shift (the worsening the CUSUM is tuned for) in each metric's own units.
DEFAULT_SHIFT: dict[str, float] = {
    "nps": 10.0,  # NPS points
    "detractor_share": 0.05,  # five percentage points more detractors
    "csat_top_box": 0.05,  # five percentage points fewer top-box answers
    "sentiment": 0.1,  # on the -1..1 sentiment scale
    "csat": 5.0,  # points on 0-100
    "ces": 5.0,
    "sqi": 5.0,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ----------------------------------------------------------------------------- detector parameters


class DropParams(_Strict):
    """Parameters of the aggregate-drop detector (``services.alerts.detectors.drop.DropConfig``).

    Unset fields take the detector's defaults (``shift``: a metric-specific default)."""

    shift: float | None = Field(default=None, gt=0, description="Worsening to detect, in the metric's units.")
    arl0: float | None = Field(default=None, gt=1, description="Design in-control run length (responses).")
    warmup_n: int | None = Field(default=None, ge=1, description="Responses pooled before the first alarm.")
    memory_n: float | None = Field(default=None, gt=0, description="Baseline memory (responses).")
    block_n: int | None = Field(default=None, ge=1)
    hold_n: int | None = Field(default=None, ge=0)
    freeze_fraction: float | None = Field(default=None, gt=0, le=1)
    relearn_on_alarm: bool | None = None
    discard_on_alarm: bool | None = None
    robust_h: bool | None = None
    confidence: float | None = Field(default=None, gt=0, lt=1)
    min_sd: float | None = Field(default=None, gt=0)


class DropResolve(_Strict):
    """When a firing aggregate drop resolves: no new alarm for ``quiet_n`` responses *or* for
    ``quiet_for`` (whichever comes first), and the CUSUM statistic at most ``reset_fraction``
    of its threshold."""

    quiet_n: int = Field(default=1440, ge=1)
    quiet_for: Duration = timedelta(days=7)
    reset_fraction: float = Field(default=0.5, ge=0, le=1)


class SurgeParams(_Strict):
    """Parameters of the theme-surge detector (``services.alerts.detectors.surge.SurgeConfig``)."""

    window: Duration | None = None
    baseline_windows: int | None = Field(default=None, ge=1)
    min_theme_count: int | None = Field(default=None, ge=1)
    min_baseline_negatives: int | None = Field(default=None, ge=0)
    min_ratio: float | None = Field(default=None, ge=0)
    min_lift: float | None = None
    confidence: float | None = Field(default=None, gt=0, lt=1)


class ChurnParams(_Strict):
    """Parameters of the churn-risk detector (``services.alerts.detectors.churn.ChurnConfig``)."""

    window: Duration | None = None
    min_negative: int | None = Field(default=None, ge=1)
    min_touchpoints: int | None = Field(default=None, ge=1)
    cooldown: Duration | None = None


class ChurnResolve(_Strict):
    """A churn alert resolves after ``quiet_for`` without a further negative experience of the
    customer, or at once when the customer's next feedback is a promoter (``on_promoter``)."""

    quiet_for: Duration = timedelta(days=14)
    on_promoter: bool = True


# ----------------------------------------------------------------------------- rules


class Override(_Strict):
    """Applies to scopes whose labels include all of ``match``; later overrides win."""

    match: Matchers = Field(min_length=1)
    enabled: bool | None = None
    severity: Severity | None = None
    min_n: int | None = Field(default=None, gt=0)
    params: dict[str, Any] | None = Field(default=None, description="Detector parameters to change for these scopes (as in `params`)."
    )


class _RuleBase(_Strict):
    name: RuleName
    enabled: bool = True
    severity: Severity | None = Field(default=None, description="Default: defaults.severity.")
    scopes: list[list[LabelName]] | None = Field(default=None, description="Default: defaults.scopes.")
    overrides: list[Override] = Field(default_factory=list)
    description: str = ""


class DropRule(_RuleBase):
    kind: Literal["aggregate_drop"]
    metric: DropMetric
    min_n: int = Field(default=30, gt=0, description="Responses the alarm window needs at least.")
    params: DropParams = DropParams()
    resolve: DropResolve = DropResolve()


class SurgeRule(_RuleBase):
    kind: Literal["theme_surge"]
    min_n: int = Field(default=30, gt=0, description="Negative comments the window needs at least.")
    params: SurgeParams = SurgeParams()


class ChurnRule(_RuleBase):
    kind: Literal["churn_risk"]
    signals: list[Literal["intent", "repeated"]] = Field(default=["intent", "repeated"], min_length=1,
        description="intent: detractor stating intent to leave; repeated: repeated negative "
        "experiences across touchpoints within the window.",
    )
    negative_csat_at_most: float = Field(default=25.0, ge=0, le=100, description="CSAT (0-100) at or below which an answer is negative."
    )
    params: ChurnParams = ChurnParams()
    resolve: ChurnResolve = ChurnResolve()


Rule = Annotated[DropRule | SurgeRule | ChurnRule, Field(discriminator="kind")]


# ----------------------------------------------------------------------------- routing


class RouteDefaults(_Strict):
    receiver: str = Field(min_length=1)
    group_by: list[str] = Field(default_factory=lambda: ["rule", "touchpoint", "unit"])
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=5)
    repeat_interval: Duration = timedelta(hours=4)


class Route(_Strict):
    """Alerts matching ``match`` go to ``receiver``; routes are tried in order, the first match
    wins unless it says ``continue: true``. Unset timings and group_by come from the default."""

    name: RuleName | None = None
    match: Matchers = Field(default_factory=dict)
    receiver: str = Field(min_length=1)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = Field(default=False, alias="continue")


class InhibitRule(_Strict):
    """While an alert matching ``source`` fires, alerts matching ``target`` whose ``equal``
    labels have the same values are not notified."""

    source: Matchers = Field(min_length=1)
    target: Matchers = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)


class Digest(_Strict):
    """A daily summary for a team: at ``at`` (local time in ``timezone``) the receiver gets one
    notification with every alert matching ``match`` that fired during the past day."""

    name: RuleName
    receiver: str = Field(min_length=1)
    at: time
    timezone: str = "UTC"
    match: Matchers = Field(default_factory=dict)

    @field_validator("at", mode="before")
    @classmethod
    def _time_of_day(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 08:00 as the sexagesimal integer 480 (minutes).
            if 0 <= value < 24 * 60:
                return time(value // 60, value % 60)
            raise ValueError("time of day out of range; quote it, e.g. '08:00'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class Escalation(_Strict):
    """Where the SLA breach of a case is notified: the first entry whose ``match`` holds for
    the case's alert labels names the receiver (one notification per breach)."""

    match: Matchers = Field(default_factory=dict)
    receiver: str = Field(min_length=1)


class Routing(_Strict):
    receivers: list[str] = Field(
        min_length=1, description="Receiver names; connection details are in the service settings."
    )
    default: RouteDefaults
    routes: list[Route] = Field(default_factory=list)
    inhibit: list[InhibitRule] = Field(default_factory=list)
    digests: list[Digest] = Field(default_factory=list)
    escalation: list[Escalation] = Field(
        default_factory=list, description="SLA breaches of cases: first match names the receiver; "
        "a breach no entry matches is recorded on the case only."
    )


class Defaults(_Strict):
    scopes: list[list[LabelName]] = Field(
        default_factory=lambda: [["touchpoint", "unit", "segment"], ["touchpoint", "unit"]]
    )
    severity: Severity = Severity.warning


class RuleSet(_Strict):
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[Rule] = Field(default_factory=list)
    routing: Routing

    def rule(self, name: str) -> DropRule | SurgeRule | ChurnRule | None:
        return next((r for r in self.rules if r.name == name), None)

    def scopes_of(self, rule: DropRule | SurgeRule | ChurnRule) -> list[tuple[str, ...]]:
        """The rule's scopes (label-name tuples), duplicates removed, order kept."""
        out: list[tuple[str, ...]] = []
        for scope in rule.scopes if rule.scopes is not None else self.defaults.scopes:
            t = tuple(scope)
            if t not in out:
                out.append(t)
        return out


# ----------------------------------------------------------------------------- semantic checks

Loc = tuple[str | int, ...]


def _matcher_errors(loc: Loc, matchers: Matchers) -> list[tuple[Loc, str]]:
    errors: list[tuple[Loc, str]] = []
    for name, value in matchers.items():
        if name not in ALERT_LABELS:
            errors.append(((*loc, name), f"unknown label {name!r} (known: {', '.join(sorted(ALERT_LABELS))})"))
        elif name in ENUM_LABELS and value not in ENUM_LABELS[name]:
            errors.append(
                ((*loc, name), f"unknown {name} {value!r} (one of: {', '.join(sorted(ENUM_LABELS[name]))})")
            )
    return errors


def _label_list_errors(loc: Loc, labels: list[str], allowed: frozenset[str] | tuple[str, ...],
                       allow_all: bool = False) -> list[tuple[Loc, str]]:
    errors: list[tuple[Loc, str]] = []
    for i, name in enumerate(labels):
        if allow_all and name == "...":
            if len(labels) != 1:
                errors.append(((*loc, i), "'...' (group by all labels) must be the only entry"))
            continue
        if name not in allowed:
            errors.append(((*loc, i), f"unknown label {name!r} (known: {', '.join(sorted(allowed))})"))
    if len(set(labels)) != len(labels):
        errors.append((loc, "labels must not repeat"))
    return errors


_PARAM_MODELS: dict[str, type[BaseModel]] = {
    "aggregate_drop": DropParams,
    "theme_surge": SurgeParams,
    "churn_risk": ChurnParams,
}


def semantic_errors(ruleset: RuleSet) -> list[tuple[Loc, str]]:
    """Checks across the file, as ``(location, message)`` pairs (empty when all is well).

    Detector configurations are built for the rule and for every override (so an override that
    makes a detector's own validation fail is reported where it is written).
    """
    from pydantic import ValidationError

    from .compile import detector_config  # local: compile imports this module

    errors: list[tuple[Loc, str]] = []
    errors += [
        (("defaults", "scopes", i), e)
        for i, scope in enumerate(ruleset.defaults.scopes)
        for _, e in _label_list_errors((), scope, SCOPE_LABELS)
    ]
    seen: dict[str, int] = {}
    for i, rule in enumerate(ruleset.rules):
        loc: Loc = ("rules", i)
        if rule.name in seen:
            errors.append(((*loc, "name"), f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])"))
        seen.setdefault(rule.name, i)
        for j, scope in enumerate(rule.scopes or []):
            errors += _label_list_errors((*loc, "scopes", j), scope, SCOPE_LABELS)
        try:
            detector_config(rule, rule.params.model_dump(exclude_none=True), rule_min_n(rule))
        except ValueError as exc:
            errors.append(((*loc, "params"), str(exc)))
        for j, ov in enumerate(rule.overrides):
            oloc: Loc = (*loc, "overrides", j)
            errors += _matcher_errors((*oloc, "match"), ov.match)
            if ov.min_n is not None and isinstance(rule, ChurnRule):
                errors.append(((*oloc, "min_n"), "churn_risk rules have no min_n"))
            if ov.params is None:
                continue
            try:
                merged = _PARAM_MODELS[rule.kind].model_validate(
                    {**rule.params.model_dump(exclude_none=True), **ov.params}
                )
            except ValidationError as exc:
                for err in exc.errors():
                    errors.append(((*oloc, "params", *err["loc"]), err["msg"]))
                continue
            try:
                detector_config(rule, merged.model_dump(exclude_none=True), ov.min_n or rule_min_n(rule))
            except ValueError as exc:
                errors.append(((*oloc, "params"), str(exc)))

    routing = ruleset.routing
    receivers = set(routing.receivers)
    if len(receivers) != len(routing.receivers):
        errors.append((("routing", "receivers"), "receiver names must not repeat"))

    def receiver_error(loc: Loc, name: str) -> None:
        if name not in receivers:
            errors.append((loc, f"unknown receiver {name!r} (declared: {', '.join(routing.receivers)})"))

    receiver_error(("routing", "default", "receiver"), routing.default.receiver)
    errors += _label_list_errors(("routing", "default", "group_by"), routing.default.group_by,
                                 ALERT_LABELS, allow_all=True)
    route_names: set[str] = set()
    for i, route in enumerate(routing.routes):
        loc = ("routing", "routes", i)
        receiver_error((*loc, "receiver"), route.receiver)
        errors += _matcher_errors((*loc, "match"), route.match)
        if route.group_by is not None:
            errors += _label_list_errors((*loc, "group_by"), route.group_by, ALERT_LABELS, allow_all=True)
        if route.name is not None:
            if route.name in route_names:
                errors.append(((*loc, "name"), f"duplicate route name {route.name!r}"))
            route_names.add(route.name)
    for i, inhibit in enumerate(routing.inhibit):
        loc = ("routing", "inhibit", i)
        errors += _matcher_errors((*loc, "source"), inhibit.source)
        errors += _matcher_errors((*loc, "target"), inhibit.target)
        errors += _label_list_errors((*loc, "equal"), inhibit.equal, ALERT_LABELS)
    digest_names: set[str] = set()
    for i, digest in enumerate(routing.digests):
        loc = ("routing", "digests", i)
        receiver_error((*loc, "receiver"), digest.receiver)
        errors += _matcher_errors((*loc, "match"), digest.match)
        if digest.name in digest_names:
            errors.append(((*loc, "name"), f"duplicate digest name {digest.name!r}"))
        digest_names.add(digest.name)
    for i, esc in enumerate(routing.escalation):
        loc = ("routing", "escalation", i)
        receiver_error((*loc, "receiver"), esc.receiver)
        errors += _matcher_errors((*loc, "match"), esc.match)
    return errors


def rule_min_n(rule: DropRule | SurgeRule | ChurnRule) -> int | None:
    return None if isinstance(rule, ChurnRule) else rule.min_n
