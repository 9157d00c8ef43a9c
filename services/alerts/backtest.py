"""Backtest: replay stored feedback through a rules file and report what would have fired.

``backtest(rules, scored_events)`` is pure: events are evaluated in the order given with time
= their ``occurred_at`` (never going backwards), the evaluator is ticked every
``tick`` of event time, and the alerts also go through the :class:`Notifier` so the report
shows how many notifications each receiver would have got. ``run_backtest`` reads the events
from ClickHouse (``kundensprechen.feedback_events``, ordered by ``occurred_at``) and prints the
report (``ksp alerts backtest --rules FILE --from ... --to ... [--json]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.alert import Alert, AlertStatus
from schemas.feedback import Comment, FeedbackEvent, Metric, Response, Scale, Touchpoint
from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel, TextAnalysis
from schemas.tables import FEEDBACK_EVENTS_COLUMNS
from services.alerts.flows import AlertEvaluator
from services.alerts.notify import Notifier
from services.alerts.rules import RuleSet, load_rules

DEFAULT_TICK = timedelta(minutes=1)
MAX_EXAMPLE_SCOPES = 5


@dataclass
class RuleReport:
    rule: str
    kind: str
    fired: int = 0
    resolved: int = 0
    still_firing: int = 0
    first_fired: datetime | None = None
    last_fired: datetime | None = None
    example_scopes: list[dict[str, str]] = field(default_factory=list)
    example_summaries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "fired": self.fired,
            "resolved": self.resolved,
            "still_firing": self.still_firing,
            "first_fired": self.first_fired.isoformat() if self.first_fired else None,
            "last_fired": self.last_fired.isoformat() if self.last_fired else None,
            "example_scopes": self.example_scopes,
            "example_summaries": self.example_summaries,
        }


@dataclass
class BacktestReport:
    events: int = 0
    first_event: datetime | None = None
    last_event: datetime | None = None
    rules: dict[str, RuleReport] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)  # receiver -> count
    repeats: dict[str, int] = field(default_factory=dict)  # receiver -> of which repeats
    alerts: list[Alert] = field(default_factory=list)  # every state change, in order

    @property
    def fired(self) -> int:
        return sum(r.fired for r in self.rules.values())

    def to_dict(self, *, with_alerts: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "events": self.events,
            "first_event": self.first_event.isoformat() if self.first_event else None,
            "last_event": self.last_event.isoformat() if self.last_event else None,
            "fired": self.fired,
            "rules": [r.to_dict() for r in self.rules.values()],
            "notifications": dict(sorted(self.notifications.items())),
            "repeats": dict(sorted(self.repeats.items())),
        }
        if with_alerts:
            out["alerts"] = [a.model_dump(mode="json") for a in self.alerts]
        return out

    def format(self) -> str:
        lines = [
            f"{self.events} events"
            + (f" from {self.first_event:%Y-%m-%d %H:%M} to {self.last_event:%Y-%m-%d %H:%M} UTC"
               if self.first_event and self.last_event else ""),
            "",
            f"{'rule':<28} {'kind':<15} {'fired':>6} {'resolved':>8} {'firing':>6}  first / last fired",
        ]
        for r in self.rules.values():
            span = (f"{r.first_fired:%Y-%m-%d %H:%M} / {r.last_fired:%Y-%m-%d %H:%M}"
                    if r.first_fired and r.last_fired else "-")
            lines.append(f"{r.rule:<28} {r.kind:<15} {r.fired:>6} {r.resolved:>8} {r.still_firing:>6}  {span}")
            for scope in r.example_scopes:
                lines.append("    e.g. " + ", ".join(f"{k}={v}" for k, v in scope.items()))
        if self.notifications:
            lines += ["", "notifications that would have been sent:"]
            lines += [f"    {k}: {v}" + (f" (of which {self.repeats[k]} repeats)" if self.repeats.get(k) else "")
                      for k, v in sorted(self.notifications.items())]
        return "\n".join(lines)


_SCOPE_KEYS = ("touchpoint", "unit", "segment", "source", "customer_id", "theme")


def backtest(rules: RuleSet, scored_events: Iterable[ScoredEvent], *, tick: timedelta = DEFAULT_TICK,
             progress: Callable[[int, datetime], None] | None = None, progress_every: int = 100_000,
             keep_alerts: bool = True) -> BacktestReport:
    """Replay events through the rules (pure: time is the events' time)."""
    evaluator = AlertEvaluator(rules)
    notifier = Notifier(rules.routing)
    report = BacktestReport(rules={
        r.name: RuleReport(rule=r.name, kind=r.kind) for r in rules.rules
    })
    now: datetime | None = None
    next_tick: datetime | None = None

    def take(alerts: list[Alert], at: datetime) -> None:
        for a in alerts:
            r = report.rules.setdefault(a.rule, RuleReport(rule=a.rule, kind=a.kind.value))
            if a.status is AlertStatus.firing:
                r.fired += 1
                r.first_fired = r.first_fired or a.starts_at
                r.last_fired = a.starts_at
                if len(r.example_scopes) < MAX_EXAMPLE_SCOPES:
                    scope = {k: a.labels[k] for k in _SCOPE_KEYS if k in a.labels}
                    if scope not in r.example_scopes:
                        r.example_scopes.append(scope)
                        r.example_summaries.append(a.summary)
            else:
                r.resolved += 1
            if keep_alerts:
                report.alerts.append(a)
            notifier.receive(a, at)

    def notify(at: datetime) -> None:
        for n in notifier.due(at):
            report.notifications[n.receiver] = report.notifications.get(n.receiver, 0) + 1
            if n.repeat:
                report.repeats[n.receiver] = report.repeats.get(n.receiver, 0) + 1

    for scored in scored_events:
        at = scored.event.occurred_at.astimezone(UTC)
        now = at if now is None or at > now else now
        if report.first_event is None:
            report.first_event = now
            next_tick = now + tick
        report.events += 1
        take(evaluator.on_scored(scored, now), now)
        assert next_tick is not None
        if now >= next_tick:
            take(evaluator.on_tick(now), now)
            notify(now)
            next_tick = now + tick
        if progress is not None and report.events % progress_every == 0:
            progress(report.events, now)
    if now is not None:
        take(evaluator.on_tick(now), now)
        notify(now)
        report.last_event = now
    for a in evaluator.firing():
        report.rules.setdefault(a.rule, RuleReport(rule=a.rule, kind=a.kind.value)).still_firing += 1
    return report


# ----------------------------------------------------------------------------- ClickHouse

COLUMNS = FEEDBACK_EVENTS_COLUMNS


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def scored_from_row(row: tuple[Any, ...] | list[Any]) -> ScoredEvent:
    """Rebuild a ScoredEvent from a ``feedback_events`` row (columns in :data:`COLUMNS` order).

    Built without re-validation (the row was validated when it was scored); what the table
    does not keep (comment language as sent, text analysis details) is left at its default.
    """
    (event_id, occurred_at, accepted_at, scored_at, touchpoint, source, unit, segment,
     customer_id, internal, nps, nps_category, csat, csat_top_box, ces, rating, sqi,
     r_metrics, r_values, r_min, r_max, comment, language, sentiment, sentiment_label, themes,
     negative_themes, churn_intent, complaint, recommend_intent, scorer_version,
     kafka_partition, kafka_offset) = row
    responses = [
        Response.model_construct(metric=Metric(m), value=float(v),
                                 scale=Scale.model_construct(min=float(lo), max=float(hi)))
        for m, v, lo, hi in zip(r_metrics, r_values, r_min, r_max, strict=False)
    ]
    event = FeedbackEvent.model_construct(
        schema_version=1, event_id=event_id, occurred_at=_utc(occurred_at),
        touchpoint=Touchpoint(touchpoint), source=source, unit=unit, segment=segment,
        customer_id=customer_id or None, internal=bool(internal), responses=responses,
        comment=Comment.model_construct(text=comment, language=language or None) if comment else None,
    )
    text = None
    if sentiment_label:
        text = TextAnalysis.model_construct(
            language=language or "und", sentiment=float(sentiment or 0.0),
            sentiment_label=SentimentLabel(sentiment_label), themes=list(themes),
            negative_themes=list(negative_themes), churn_intent=bool(churn_intent),
            complaint=bool(complaint), recommend_intent=bool(recommend_intent),
        )
    return ScoredEvent.model_construct(
        schema_version=1, event=event, scorer_version=scorer_version,
        accepted_at=_utc(accepted_at), scored_at=_utc(scored_at),
        nps=None if nps is None else int(nps),
        nps_category=NpsCategory(nps_category) if nps_category else None,
        csat=None if csat is None else float(csat),
        csat_top_box=None if csat_top_box is None else bool(csat_top_box),
        ces=None if ces is None else float(ces), rating=None if rating is None else float(rating),
        sqi=None if sqi is None else float(sqi), text=text, churn_intent=bool(churn_intent),
        complaint=bool(complaint), recommend_intent=bool(recommend_intent),
        kafka_partition=int(kafka_partition), kafka_offset=int(kafka_offset),
    )


def parse_when(value: str, *, default: datetime | None = None) -> datetime | None:
    """An ISO date (midnight UTC) or datetime (UTC unless it has a zone); '' -> default."""
    value = (value or "").strip()
    if not value:
        return default
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(f"not an ISO date or datetime: {value!r}") from None


def read_events(client: Any, database: str, table: str, since: datetime | None,
                until: datetime) -> Iterator[ScoredEvent]:
    """Stream the stored events of the period, oldest first, one row per event id."""
    where = ["occurred_at < {until:DateTime64(3, 'UTC')}"]
    params: dict[str, Any] = {"until": until}
    if since is not None:
        where.append("occurred_at >= {since:DateTime64(3, 'UTC')}")
        params["since"] = since
    sql = (f"SELECT {', '.join(COLUMNS)} FROM {database}.{table} WHERE {' AND '.join(where)} "
           "ORDER BY occurred_at, event_id LIMIT 1 BY event_id")
    with client.query_rows_stream(sql, parameters=params) as stream:
        for row in stream:
            yield scored_from_row(row)


def run_backtest(settings: Any, *, rules_path: Path | None, since: str | datetime | None = None,
                 until: str | datetime | None = None, as_json: bool = False,
                 echo: Callable[[str], Any] = print, progress_every: int = 100_000) -> BacktestReport:
    """Backtest a rules file against the events stored in ClickHouse and print the report."""
    from services.common.clickhouse import DISTRIBUTED_SUFFIX, connect

    rules = load_rules(rules_path)
    start = since if isinstance(since, datetime) else parse_when(since or "")
    end = until if isinstance(until, datetime) else parse_when(until or "", default=datetime.now(UTC))
    assert end is not None
    ch = settings.clickhouse
    table = "feedback_events" + (DISTRIBUTED_SUFFIX if ch.cluster else "")
    client = connect(ch)
    say = (lambda _m: None) if as_json else echo
    say(f"backtest of {rules_path or 'the built-in rules'} ({len(rules.rules)} rules) on "
        f"{ch.database}.{table} from {start.isoformat() if start else 'the beginning'} to {end.isoformat()}")
    try:
        report = backtest(
            rules, read_events(client, ch.database, table, start and _utc(start), _utc(end)),
            progress=lambda n, at: say(f"  {n} events replayed (at {at:%Y-%m-%d %H:%M})"),
            progress_every=progress_every, keep_alerts=False,
        )
    finally:
        client.close()
    if as_json:
        echo(json.dumps(report.to_dict(), indent=2))
    else:
        echo(report.format())
    return report
