"""Specification of the backtest (`services.alerts.backtest`).

* ``backtest(rules, events)`` is pure: a synthetic history with a known NPS drop in one unit and
  one customer stating intent to leave gives exactly those alerts, per rule, with first/last
  times, example scopes and the notifications each receiver would have got.
* ``run_backtest`` reads the same kind of history back from the real (embedded) ClickHouse,
  rebuilt row by row into scored events, and prints the report (text with progress, or JSON).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.alert import AlertStatus
from schemas.feedback import FeedbackEvent
from schemas.scored import ScoredEvent
from services.alerts.backtest import backtest, parse_when, run_backtest, scored_from_row
from services.alerts.flows import evaluate_all
from services.alerts.rules import load_rules, parse
from services.common.settings import ClickHouseSettings
from services.scoring.scorers.event import score_event
from services.scoring.sink.rows import COLUMNS, to_row
from services.scoring.text import analyse
from tests.alerts.test_flows import DROPPED, IN_CONTROL, check_lifecycle, scored

RULES = """\
version: 1
rules:
  - name: nps-drop
    kind: aggregate_drop
    metric: nps
    min_n: 30
    params: {shift: 20, warmup_n: 400, block_n: 50, hold_n: 100, arl0: 20000}
    resolve: {quiet_n: 600}
  - name: churn
    kind: churn_risk
routing:
  receivers: [webhook-ops, email-cx]
  default: {receiver: webhook-ops, group_by: [rule, touchpoint, unit]}
  routes:
    - match: {kind: churn_risk}
      receiver: email-cx
      group_by: [customer_id]
      group_wait: 0s
      repeat_interval: 24h
"""


def history(t0: datetime, unit: str, rng: random.Random) -> list[ScoredEvent]:
    """1500 in-control NPS answers, 500 after a drop, 1500 recovered; one churning customer."""
    out = []
    for i in range(3500):
        p, _, d = DROPPED if 1500 <= i < 2000 else IN_CONTROL
        u = rng.random()
        answer = 10 if u < p else (2 if u >= 1 - d else 7)
        out.append(scored(f"{unit}-{i}", t0 + timedelta(minutes=3 * i), nps=answer, unit=unit))
    out.append(scored(f"{unit}-churn", t0 + timedelta(hours=5), nps=1, unit=unit, customer="c-77",
                      churn_intent=True))
    out.sort(key=lambda s: s.event.occurred_at)
    return out


class TestPureBacktest:
    T0 = datetime(2026, 5, 4, tzinfo=UTC)

    def test_reports_what_would_have_fired_per_rule(self) -> None:
        events = history(self.T0, "leipzig", random.Random(7))
        report = backtest(parse(RULES), events)
        assert report.events == 3501
        assert report.first_event == self.T0 and report.last_event == events[-1].event.occurred_at
        drop, churn = report.rules["nps-drop"], report.rules["churn"]
        assert (drop.fired, drop.resolved, drop.still_firing) == (2, 2, 0)  # two scope levels
        change = self.T0 + timedelta(minutes=3 * 1500)
        assert drop.first_fired is not None and drop.last_fired is not None
        assert change <= drop.first_fired <= drop.last_fired <= change + timedelta(minutes=3 * 500)
        assert {"touchpoint": "store", "unit": "leipzig"} in drop.example_scopes
        assert (churn.fired, churn.still_firing) == (1, 1)
        assert churn.example_scopes == [{"touchpoint": "store", "unit": "leipzig", "segment": "private",
                                         "customer_id": "c-77"}]
        # webhook-ops: both scopes' drops are in one group (rule, touchpoint, unit): notified
        # once firing, once resolved, repeated every 4 h in between; the churn alert (still
        # firing at the end, a week later) to email-cx once, then every 24 h
        fresh = {k: v - report.repeats.get(k, 0) for k, v in report.notifications.items()}
        assert fresh == {"email-cx": 1, "webhook-ops": 2}
        assert report.repeats["email-cx"] == 7  # 7 days and 2 hours of firing
        drops = [a for a in report.alerts if a.rule == "nps-drop"]
        hours = (max(a.ends_at for a in drops if a.ends_at) - min(a.starts_at for a in drops)) / timedelta(hours=1)
        assert int(hours // 4) - 1 <= report.repeats["webhook-ops"] <= int(hours // 4)
        check_lifecycle(report.alerts)
        assert [a.status for a in report.alerts].count(AlertStatus.resolved) == 2

    def test_is_deterministic_and_agrees_with_the_live_evaluator(self) -> None:
        events = history(self.T0, "leipzig", random.Random(7))
        one, two = backtest(parse(RULES), events), backtest(parse(RULES), events)
        assert one.to_dict(with_alerts=True) == two.to_dict(with_alerts=True)
        live = [a for a in evaluate_all(parse(RULES), events) if a.status is AlertStatus.firing]
        assert [a.evidence for a in live] == [a.evidence for a in one.alerts if a.status is AlertStatus.firing]

    def test_report_renders_as_text_and_json(self) -> None:
        report = backtest(parse(RULES), history(self.T0, "leipzig", random.Random(7)))
        text = report.format()
        assert "nps-drop" in text and "e.g. touchpoint=store, unit=leipzig" in text
        assert "email-cx: 8 (of which 7 repeats)" in text
        data = json.loads(json.dumps(report.to_dict()))
        assert data["fired"] == 3 and data["rules"][0]["rule"] == "nps-drop"

    def test_an_empty_history(self) -> None:
        report = backtest(load_rules(), [])
        assert report.events == 0 and report.fired == 0 and report.first_event is None

    def test_dates(self) -> None:
        assert parse_when("2026-05-04") == datetime(2026, 5, 4, tzinfo=UTC)
        assert parse_when("2026-05-04T10:00:00+02:00") == datetime(2026, 5, 4, 8, tzinfo=UTC)
        assert parse_when("") is None
        with pytest.raises(ValueError, match="not an ISO date"):
            parse_when("May 4th")


# ============================================================================ ClickHouse


def scored_via_scorer(s: ScoredEvent) -> ScoredEvent:
    """The same feedback scored by the real scorer (and text analyser), as stored by the sink."""
    event = FeedbackEvent.model_validate(s.event.model_dump())
    if s.churn_intent:
        event = event.model_copy(update={"comment": event.comment.model_copy(update={  # type: ignore[union-attr]
            "text": "Ich kündige meinen Vertrag, der Service war eine Katastrophe."})})
    at = s.event.occurred_at
    return score_event(event, accepted_at=at, scored_at=at, analyse_text=analyse)


class TestRunBacktestOnClickHouse:
    @pytest.fixture(scope="class")
    def stored(self, clickhouse):  # type: ignore[no-untyped-def]
        from services.common.clickhouse import connect, migrate

        settings = ClickHouseSettings(url=clickhouse.url)
        migrate(settings)
        unit = f"bt-{uuid.uuid4().hex[:8]}"
        t0 = datetime(2031, 5, 5, tzinfo=UTC)  # a period no other test writes to
        events = [scored_via_scorer(s) for s in history(t0, unit, random.Random(7))]
        assert events[-1].event.occurred_at < datetime(2031, 5, 15, tzinfo=UTC)
        client = connect(settings)
        try:
            rows = [to_row(s, 0, i) for i, s in enumerate(events)]
            client.insert(f"{settings.database}.feedback_events", rows[::-1], column_names=list(COLUMNS))
            client.insert(f"{settings.database}.feedback_events", rows[:10], column_names=list(COLUMNS))  # dupes
        finally:
            client.close()
        return settings, unit, events

    def test_json_report_of_the_stored_history(self, stored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        settings, unit, _ = stored
        rules_path = tmp_path / "rules.yaml"
        rules_path.write_text(RULES)
        out: list[str] = []

        class Settings:
            clickhouse = settings

        report = run_backtest(Settings(), rules_path=rules_path, since="2031-05-01", until="2031-05-15",
                              as_json=True, echo=out.append)
        [printed] = out  # JSON only, no progress lines
        data = json.loads(printed)
        assert data["events"] == 3501  # duplicates read once
        rules = {r["rule"]: r for r in data["rules"]}
        assert rules["nps-drop"]["fired"] == 2 and rules["nps-drop"]["resolved"] == 2
        assert rules["churn"]["fired"] == 1
        assert {"touchpoint": "store", "unit": unit} in rules["nps-drop"]["example_scopes"]
        assert rules["churn"]["example_scopes"][0]["customer_id"] == "c-77"
        assert report.fired == 3

    def test_text_report_with_progress(self, stored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        settings, unit, _ = stored
        rules_path = tmp_path / "rules.yaml"
        rules_path.write_text(RULES)
        out: list[str] = []

        class Settings:
            clickhouse = settings

        run_backtest(Settings(), rules_path=rules_path, since="2031-05-01", until="2031-05-15",
                     as_json=False, echo=out.append, progress_every=1000)
        assert out[0].startswith("backtest of ") and "2031-05-01" in out[0]
        progress = [line for line in out if "events replayed" in line]
        assert progress == out[1:4] and progress[0].strip().startswith("1000 events replayed (at 2031-05-")
        assert "3501 events" in out[-1] and f"unit={unit}" in out[-1]

    def test_a_period_without_events(self, stored) -> None:  # type: ignore[no-untyped-def]
        settings, _, _ = stored

        class Settings:
            clickhouse = settings

        out: list[str] = []
        report = run_backtest(Settings(), rules_path=None, since="2031-06-01", until="2031-06-02",
                              as_json=False, echo=out.append)
        assert report.events == 0 and "0 events" in out[-1]


def test_a_stored_row_round_trips_into_an_equivalent_scored_event() -> None:
    s = scored_via_scorer(scored("rt-1", datetime(2031, 5, 5, tzinfo=UTC), nps=1, csat=2,
                                 customer="c-1", churn_intent=True))
    back = scored_from_row(tuple(to_row(s, 3, 42)))
    assert back.event_id == s.event_id and back.event.occurred_at == s.event.occurred_at
    assert (back.nps, back.nps_category, back.csat, back.csat_top_box) == (s.nps, s.nps_category, s.csat, s.csat_top_box)
    assert back.churn_intent and s.churn_intent
    assert back.text is not None and s.text is not None
    assert (back.text.sentiment_label, back.text.negative_themes) == (s.text.sentiment_label, s.text.negative_themes)
    assert back.event.customer_id == "c-1" and back.event.touchpoint == s.event.touchpoint
    assert [(r.metric, r.value) for r in back.event.responses] == [(r.metric, r.value) for r in s.event.responses]
