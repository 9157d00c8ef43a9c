"""A small, hand-countable data set in the session ClickHouse for the analyst tests.

Every event is built as a real `FeedbackEvent`, scored by `score_event` with a fixed tiny text
analyser (a lookup table, so sentiment and themes are known exactly) and converted with
`to_row`, then inserted into `kundensprechen.feedback_events`; the materialized views fill the
aggregates. All events lie in 2025-03-03 .. 2025-03-16 (two ISO weeks) and use units and
segments prefixed `ana-`, so data other tests write to the shared session database does not
disturb the numbers asserted here.

The data set (counts are what the tests assert):

* W  web / ana-north / ana-private, 2025-03-04 10:00-10:49 (one event every 30 s), customers
  ana-c000..ana-c099: 50 promoters (NPS 10, CSAT 5/5, CES 7/7, positive comment, theme staff),
  30 passives (8, 4/5, 4/7, neutral comment, theme price), 20 detractors (3, 2/5, 1/7; the first
  10 complain about waiting time, 5 of them (ana-c080..084) with churn intent; the last 10
  complain about price and mention staff). NPS 30, CSAT 77.5, top box 80 %, CES 65.
* S  store / ana-south / ana-business, 2025-03-05 12:00-12:09, 10 events: 6 promoters,
  2 passives, 2 detractors (one with churn intent); NPS 40. Scored by an older scorer version.
* I  internal / ana-it-desk / ana-staff (employees), 2025-03-06 09:00-09:09, 10 events:
  2 promoters, 3 passives, 5 detractors; NPS -30.
* E  call_centre / ana-north / ana-private, 2025-03-11 14:00-14:19, 20 English events: the first
  three are follow-ups of churn cases ana-c080 (NPS 10), ana-c081 (6), ana-c082 (2); then 9
  promoters (9), 4 passives (7) and 4 detractors (5); promoters 10, passives 4, detractors 6.

Every event carries NPS, CSAT, CES and a comment. That is deliberate: the minute view of
migration 0002 drops the whole insert block when a minute group has no CSAT, CES, SQI or
sentiment value (see `test_cookbook.py::test_aggregates_keep_groups_without_some_measures`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.feedback import Comment, FeedbackEvent, Metric, Response, Scale, Touchpoint
from schemas.scored import ScoredEvent, SentimentLabel, TextAnalysis

DB = "kundensprechen"
FROM = "2025-03-03"
TO = "2025-03-17"  # exclusive
OLD_SCORER = "score-0.9.0+text-0.9.0"


def _ta(lang: str, sentiment: float, label: str, themes=(), negative=(), churn=False,
        complaint=False, recommend=False) -> TextAnalysis:
    return TextAnalysis(language=lang, sentiment=sentiment, sentiment_label=SentimentLabel(label),
                        themes=list(themes), negative_themes=list(negative), churn_intent=churn,
                        complaint=complaint, recommend_intent=recommend)


# The fixed text analyser: comment text -> analysis.
TEXTS: dict[str, TextAnalysis] = {
    "Sehr freundliches Personal, gerne wieder": _ta("de", 0.8, "positive", ["staff"], recommend=True),
    "Preis ist in Ordnung": _ta("de", 0.0, "neutral", ["price"]),
    "Viel zu lange Wartezeit": _ta("de", -0.6, "negative", ["waiting_time"], ["waiting_time"],
                                   complaint=True),
    "Viel zu lange Wartezeit, ich kündige": _ta("de", -0.8, "negative", ["waiting_time"],
                                                ["waiting_time"], churn=True, complaint=True),
    "Zu teuer, obwohl das Personal nett war": _ta("de", -0.4, "negative", ["price", "staff"],
                                                  ["price"], complaint=True),
    "Kündige, Preise zu hoch": _ta("de", -0.8, "negative", ["price"], ["price"], churn=True,
                                   complaint=True),
    "Great service": _ta("en", 0.6, "positive", ["staff"], recommend=True),
    "It was fine": _ta("en", 0.1, "neutral"),
    "Too expensive": _ta("en", -0.6, "negative", ["price"], ["price"], complaint=True),
}


def fixed_analyser(text: str, language: str | None) -> TextAnalysis:
    return TEXTS[text]


@dataclass(frozen=True)
class Spec:
    event_id: str
    at: datetime
    touchpoint: str
    unit: str
    segment: str
    customer: str
    nps: int
    csat: int  # 1-5
    ces: int  # 1-7
    comment: str


def _block(prefix: str, start: datetime, step: timedelta, touchpoint: str, unit: str,
           segment: str, rows: list[tuple[str, int, int, int, str]]) -> list[Spec]:
    return [Spec(f"ana-{prefix}-{i:03d}", start + i * step, touchpoint, unit, segment, customer,
                 nps, csat, ces, comment)
            for i, (customer, nps, csat, ces, comment) in enumerate(rows)]


def specs() -> list[Spec]:
    pos, neu = "Sehr freundliches Personal, gerne wieder", "Preis ist in Ordnung"
    wait, churn = "Viel zu lange Wartezeit", "Viel zu lange Wartezeit, ich kündige"
    price = "Zu teuer, obwohl das Personal nett war"
    w = ([(f"ana-c{i:03d}", 10, 5, 7, pos) for i in range(50)]
         + [(f"ana-c{i:03d}", 8, 4, 4, neu) for i in range(50, 80)]
         + [(f"ana-c{i:03d}", 3, 2, 1, churn if i < 85 else wait) for i in range(80, 90)]
         + [(f"ana-c{i:03d}", 3, 2, 1, price) for i in range(90, 100)])
    s = ([(f"ana-s{i}", 9, 5, 6, pos) for i in range(6)]
         + [(f"ana-s{i}", 7, 4, 5, neu) for i in range(6, 8)]
         + [("ana-s8", 4, 2, 2, "Kündige, Preise zu hoch"), ("ana-s9", 5, 2, 3, price)])
    i_ = ([(f"ana-emp{i}", 9, 5, 7, pos) for i in range(2)]
          + [(f"ana-emp{i}", 7, 3, 4, neu) for i in range(2, 5)]
          + [(f"ana-emp{i}", 2, 1, 1, wait) for i in range(5, 10)])
    e = ([("ana-c080", 10, 5, 7, "Great service"), ("ana-c081", 6, 3, 4, "It was fine"),
          ("ana-c082", 2, 1, 1, "Too expensive")]
         + [(f"ana-e{i}", 9, 5, 7, "Great service") for i in range(3, 12)]
         + [(f"ana-e{i}", 7, 4, 5, "It was fine") for i in range(12, 16)]
         + [(f"ana-e{i}", 5, 2, 2, "Too expensive") for i in range(16, 20)])
    return (
        _block("w", datetime(2025, 3, 4, 10, tzinfo=UTC), timedelta(seconds=30), "web",
               "ana-north", "ana-private", w)
        + _block("s", datetime(2025, 3, 5, 12, tzinfo=UTC), timedelta(minutes=1), "store",
                 "ana-south", "ana-business", s)
        + _block("i", datetime(2025, 3, 6, 9, tzinfo=UTC), timedelta(minutes=1), "internal",
                 "ana-it-desk", "ana-staff", i_)
        + _block("e", datetime(2025, 3, 11, 14, tzinfo=UTC), timedelta(minutes=1), "call_centre",
                 "ana-north", "ana-private", e)
    )


def scored(spec: Spec) -> ScoredEvent:
    from services.scoring.scorers.event import score_event

    event = FeedbackEvent(
        event_id=spec.event_id, occurred_at=spec.at, touchpoint=Touchpoint(spec.touchpoint),
        source="analyst-test", unit=spec.unit, segment=spec.segment, customer_id=spec.customer,
        responses=[Response(metric=Metric.nps, value=spec.nps),
                   Response(metric=Metric.csat, value=spec.csat),
                   Response(metric=Metric.ces, value=spec.ces, scale=Scale(min=1, max=7))],
        comment=Comment(text=spec.comment),
    )
    result = score_event(event, accepted_at=spec.at + timedelta(seconds=1),
                         scored_at=spec.at + timedelta(seconds=2), analyse_text=fixed_analyser)
    if spec.event_id.startswith("ana-s-"):
        result = result.model_copy(update={"scorer_version": OLD_SCORER})
    return result


def rows() -> list[list[Any]]:
    from services.scoring.sink.rows import to_row

    return [to_row(scored(s), partition=0, offset=i) for i, s in enumerate(specs())]


def settings_for(clickhouse):  # type: ignore[no-untyped-def]
    from services.common.settings import ClickHouseSettings

    return ClickHouseSettings(url=clickhouse.url, database=DB)


def insert(client, table_rows: list[list[Any]]) -> None:  # type: ignore[no-untyped-def]
    from services.scoring.sink.rows import COLUMNS

    # async_insert=0: the embedded server has async inserts on, which may merge this block with
    # another test's insert into the same table.
    client.insert(f"{DB}.feedback_events", table_rows, column_names=list(COLUMNS),
                  settings={"async_insert": 0})


@pytest.fixture(scope="session")
def ch_client(clickhouse):  # type: ignore[no-untyped-def]
    from services.common.clickhouse import connect, migrate

    settings = settings_for(clickhouse)
    migrate(settings)
    client = connect(settings)
    yield client
    client.close()


@pytest.fixture(scope="session")
def analyst_data(ch_client):  # type: ignore[no-untyped-def]
    """Insert the data set once per session (idempotent: skipped when already stored)."""
    stored = ch_client.query(
        f"SELECT count() FROM {DB}.feedback_events WHERE event_id LIKE 'ana-%' "
        f"AND occurred_at >= '{FROM}' AND occurred_at < '{TO}'"
    ).result_rows[0][0]
    if stored == 0:
        insert(ch_client, rows())
    return {"from": FROM, "to": TO}


def nps_only_row(spec: Spec) -> list[Any]:
    """The row of an event with only an NPS answer (no CSAT, CES, comment)."""
    from services.scoring.scorers.event import score_event
    from services.scoring.sink.rows import to_row

    event = FeedbackEvent(
        event_id=spec.event_id, occurred_at=spec.at, touchpoint=Touchpoint(spec.touchpoint),
        source="analyst-test", unit=spec.unit, segment=spec.segment,
        responses=[Response(metric=Metric.nps, value=spec.nps)],
    )
    result = score_event(event, accepted_at=spec.at, scored_at=spec.at, analyse_text=fixed_analyser)
    return to_row(result, partition=0, offset=0)
