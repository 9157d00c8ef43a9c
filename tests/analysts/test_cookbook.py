"""Every query of docs/analysts.md runs on the real (embedded) ClickHouse and gives the numbers
counted by hand from the data set in conftest.py; the analyst views match an independent Python
implementation of the Wilson, adjusted-Wald NPS and normal-mean intervals."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.analysts.conftest import DB, FROM, TO, insert, rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
Z = 1.959964
PARAMS = {"from": FROM, "to": TO, "until": TO, "unit": "ana-north"}

_QUERY = re.compile(r"^<!-- query: ([\w-]+) -->\n```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def cookbook() -> dict[str, str]:
    text = DOC.read_text()
    found = _QUERY.findall(text)
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), "query names must be unique"
    # every marker is followed by a sql block (no marker silently ignored)
    assert text.count("<!-- query:") == len(found)
    return dict(found)


QUERIES = cookbook()


# -- independent reference implementations ---------------------------------------------------

def wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = p + Z * Z / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - spread) / (1 + Z * Z / n), (centre + spread) / (1 + Z * Z / n)


def nps_interval(promoters: int, detractors: int, n: int) -> tuple[float, float, float]:
    """Rocks' adjusted Wald: the multinomial (population) variance of the +1/0/-1 scores after
    adding 3/4 of an answer to the promoters and to the detractors and 3/2 to the passives."""
    weights = {1: promoters + 0.75, -1: detractors + 0.75, 0: n - promoters - detractors + 1.5}
    total = sum(weights.values())
    mean = sum(s * w for s, w in weights.items()) / total
    variance = sum(w * (s - mean) ** 2 for s, w in weights.items()) / total
    half = Z * math.sqrt(variance / total)
    observed = 100 * (promoters - detractors) / n
    return (observed, max(-100, min(observed, 100 * (mean - half))),
            min(100, max(observed, 100 * (mean + half))))


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    n = len(values)
    mean = sum(values) / n
    s2 = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = Z * math.sqrt(s2 / n)
    return mean, mean - half, mean + half


def run(client, name: str, **overrides):  # type: ignore[no-untyped-def]
    result = client.query(QUERIES[name], parameters={**PARAMS, **overrides})
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


# -- (a) every query runs and (b) returns rows -------------------------------------------------

def test_cookbook_has_the_required_queries() -> None:
    assert len(QUERIES) >= 12
    assert {
        "nps_by_touchpoint_week", "detractor_drivers", "unit_ranking_fair", "csat_top_box_trend",
        "ces_by_touchpoint", "churn_intent_rate_by_segment", "churn_recovery",
        "employee_vs_customer", "sentiment_by_language", "theme_share_trend",
        "detractor_comments_for_unit", "scorer_version_mix", "hourly_volume_by_touchpoint",
        "sqi_distribution",
    } <= set(QUERIES)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_runs_and_returns_rows(ch_client, analyst_data, name: str) -> None:
    assert run(ch_client, name), f"{name} returned no rows"


# -- (c) hand-computed numbers -----------------------------------------------------------------

def test_nps_by_touchpoint_week(ch_client, analyst_data) -> None:
    got = {(r["week"], r["touchpoint"]): r for r in run(ch_client, "nps_by_touchpoint_week")}
    assert set(got) == {(date(2025, 3, 3), "web"), (date(2025, 3, 3), "store"),
                        (date(2025, 3, 10), "call_centre")}  # employees left out
    web = got[(date(2025, 3, 3), "web")]
    # 50 / 30 / 20 of 100: NPS 30; adjusted Wald [14.05, 44.20] (docs/analysts.md's example)
    assert (web["answers"], web["n_promoters"], web["n_detractors"]) == (100, 50, 20)
    assert web["nps"] == 30.0
    assert (web["nps_low"], web["nps_high"]) == (14.05, 44.2)
    nps, low, high = nps_interval(50, 20, 100)
    assert (web["nps_low"], web["nps_high"]) == pytest.approx((low, high), abs=0.006)
    store = got[(date(2025, 3, 3), "store")]  # 6 promoters, 2 passives, 2 detractors
    nps, low, high = nps_interval(6, 2, 10)
    assert (store["nps"], store["nps_low"], store["nps_high"]) == pytest.approx(
        (nps, round(low, 2), round(high, 2)), abs=0.011)
    cc = got[(date(2025, 3, 10), "call_centre")]  # 10 / 4 / 6 of 20
    assert cc["nps"] == 20.0 and cc["answers"] == 20


def test_detractor_drivers(ch_client, analyst_data) -> None:
    got = {r["theme"]: r for r in run(ch_client, "detractor_drivers")}
    # customer detractors: web 20 + store 2 + call centre 6 = 28; all other NPS answers: 102.
    # Negative price mentions by detractors: web 10 + store 2 + call centre 5 = 17;
    # waiting time: web 10. Nobody else mentions a theme negatively.
    assert set(got) == {"price", "waiting_time"}
    assert (got["price"]["detractor_mentions"], got["price"]["other_mentions"]) == (17, 0)
    assert got["price"]["detractor_share"] == round(17 / 28, 4)
    assert got["price"]["lift_pp"] == pytest.approx(round(100 * round(17 / 28, 4), 2))
    assert got["waiting_time"]["detractor_share"] == round(10 / 28, 4)
    assert got["waiting_time"]["other_share"] == 0
    assert [r["theme"] for r in run(ch_client, "detractor_drivers")] == ["price", "waiting_time"]


def test_unit_ranking_is_fair_to_small_n(ch_client, analyst_data) -> None:
    ranked = run(ch_client, "unit_ranking_fair")
    # ana-south has the higher NPS (40, n = 10) but ana-north (28.33, n = 120) ranks first:
    # its interval's lower bound is far higher.
    assert [r["unit"] for r in ranked] == ["ana-north", "ana-south"]
    north, south = ranked
    n_nps, n_low, _ = nps_interval(60, 26, 120)
    _, s_low, _ = nps_interval(6, 2, 10)
    assert north["nps"] == pytest.approx(round(n_nps, 2)) and north["answers"] == 120
    assert north["nps_low"] == pytest.approx(round(n_low, 2), abs=0.011)
    assert south["nps"] == 40.0
    assert south["nps_low"] == pytest.approx(round(s_low, 2), abs=0.011)
    nps_all = 100 * (66 - 28) / 130  # all customer answers of the period
    assert north["nps_shrunk"] == pytest.approx(round((120 * n_nps + 30 * nps_all) / 150, 2))
    assert south["nps_shrunk"] == pytest.approx(round((10 * 40 + 30 * nps_all) / 40, 2))
    assert north["rank"] == 1 and south["rank"] == 2


def test_churn_intent_rate_by_segment(ch_client, analyst_data) -> None:
    got = {r["segment"]: r for r in run(ch_client, "churn_intent_rate_by_segment")}
    assert set(got) == {"ana-private", "ana-business"}  # employees (ana-staff) left out
    private = got["ana-private"]  # 5 churn comments of 120 (web 100 + call centre 20)
    assert (private["churn_comments"], private["comments"]) == (5, 120)
    low, high = wilson(5, 120)
    assert private["churn_rate"] == round(5 / 120, 4)
    assert (private["churn_rate_low"], private["churn_rate_high"]) == pytest.approx(
        (round(low, 4), round(high, 4)), abs=1.1e-4)
    business = got["ana-business"]  # 1 of 10
    low, high = wilson(1, 10)
    assert (business["churn_rate"], business["churn_rate_low"], business["churn_rate_high"]) == (
        pytest.approx((0.1, round(low, 4), round(high, 4)), abs=1.1e-4))


def test_churn_recovery(ch_client, analyst_data) -> None:
    (got,) = run(ch_client, "churn_recovery")
    # Cases: ana-c080..084 (web, NPS 3) and ana-s8 (store, NPS 4). Follow-ups on 2025-03-11:
    # c080 gave 10 (promoter and improved), c081 gave 6 (improved), c082 gave 2 (neither);
    # c083, c084 and s8 gave no later feedback.
    assert (got["cases"], got["with_follow_up"], got["recovered_promoter"],
            got["improved_nps"], got["recovered"]) == (6, 3, 1, 2, 2)
    low, high = wilson(2, 6)
    assert got["recovery_rate"] == round(2 / 6, 4)
    assert (got["recovery_rate_low"], got["recovery_rate_high"]) == pytest.approx(
        (round(low, 4), round(high, 4)), abs=1.1e-4)
    # the follow-ups are outside a window that ends before them
    (early,) = run(ch_client, "churn_recovery", until="2025-03-10")
    assert (early["cases"], early["with_follow_up"], early["recovered"]) == (6, 0, 0)


def test_csat_top_box_trend_and_ces(ch_client, analyst_data) -> None:
    days = {r["day"].date(): r for r in run(ch_client, "csat_top_box_trend")}
    assert set(days) == {date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 11)}
    web_day = days[date(2025, 3, 4)]  # CSAT 5 or 4 (top two boxes) for 80 of 100
    low, high = wilson(80, 100)
    assert (web_day["answers"], web_day["top_box"]) == (100, 80)
    assert (web_day["top_box_low"], web_day["top_box_high"]) == pytest.approx(
        (round(low, 4), round(high, 4)), abs=1.1e-4)
    ces = {r["touchpoint"]: r for r in run(ch_client, "ces_by_touchpoint")}
    # web: 50 x 100, 30 x 50, 20 x 0 on 0-100 (answers 7, 4, 1 of 1-7)
    mean, low, high = mean_interval([100.0] * 50 + [50.0] * 30 + [0.0] * 20)
    assert mean == 65.0
    assert (ces["web"]["ces"], ces["web"]["ces_low"], ces["web"]["ces_high"]) == pytest.approx(
        (65.0, round(low, 2), round(high, 2)), abs=0.011)


def test_employee_vs_customer_and_sentiment_by_language(ch_client, analyst_data) -> None:
    got = {r["audience"]: r for r in run(ch_client, "employee_vs_customer")}
    assert got["employees"]["nps"] == -30.0 and got["employees"]["answers"] == 10
    assert got["customers"]["nps"] == pytest.approx(round(100 * (66 - 28) / 130, 2))
    assert got["employees"]["csat"] == 35.0  # 2 x 100, 3 x 50, 5 x 0
    langs = {r["language"]: r for r in run(ch_client, "sentiment_by_language")}
    # de: 50 x 0.8, 30 x 0, 5 x -0.8, 5 x -0.6, 10 x -0.4 (web); 6 x 0.8, 2 x 0, -0.8, -0.4 (store)
    de = [0.8] * 50 + [0.0] * 30 + [-0.8] * 5 + [-0.6] * 5 + [-0.4] * 10 + [0.8] * 6 + [0.0] * 2 \
        + [-0.8, -0.4]
    en = [0.6] * 10 + [0.1] * 5 + [-0.6] * 5
    for lang, values in (("de", de), ("en", en)):
        mean, low, high = mean_interval(values)
        assert langs[lang]["comments"] == len(values)
        assert (langs[lang]["sentiment_mean"], langs[lang]["sentiment_low"],
                langs[lang]["sentiment_high"]) == pytest.approx(
            (round(mean, 3), round(low, 3), round(high, 3)), abs=1.1e-3)


def test_event_level_queries(ch_client, analyst_data) -> None:
    comments = run(ch_client, "detractor_comments_for_unit")
    # ana-north detractors: web 20 + call centre 6, newest first, each with its event id
    assert len(comments) == 26
    assert comments[0]["event_id"] == "ana-e-019"
    assert {c["event_id"] for c in comments} == (
        {f"ana-w-{i:03d}" for i in range(80, 100)}
        | {"ana-e-001", "ana-e-002"} | {f"ana-e-{i:03d}" for i in range(16, 20)})
    mix = {(r["day"], r["scorer_version"]): r["events"] for r in run(ch_client, "scorer_version_mix")}
    assert mix[(date(2025, 3, 5), "score-0.9.0+text-0.9.0")] == 10
    assert mix[(date(2025, 3, 4), "score-1.0.0+text-1.1.0")] == 100
    volume = {(r["hour"], r["touchpoint"]): r["responses"]
              for r in run(ch_client, "hourly_volume_by_touchpoint")}
    assert volume == {(datetime(2025, 3, 4, 10), "web"): 100, (datetime(2025, 3, 5, 12), "store"): 10,
                      (datetime(2025, 3, 6, 9), "internal"): 10,
                      (datetime(2025, 3, 11, 14), "call_centre"): 20}
    bands = run(ch_client, "sqi_distribution")
    assert sum(b["events"] for b in bands) == 130
    themes = {(r["week"], r["theme"]): r for r in run(ch_client, "theme_share_trend")}
    wait = themes[(date(2025, 3, 3), "waiting_time")]  # 10 of the 110 customer comments of week 1
    assert (wait["mentions"], wait["negative_mentions"], wait["comments"]) == (10, 10, 110)
    (check,) = run(ch_client, "duplicate_check")
    assert check["duplicates"] == 0 and check["missing_from_aggregates"] == 0
    assert check["event_rows"] == 140


# -- the analyst views --------------------------------------------------------------------------

@pytest.mark.parametrize("view, period", [("quality_daily", datetime(2025, 3, 4)),
                                          ("quality_hourly", datetime(2025, 3, 4, 10))])
def test_views_match_independent_intervals(ch_client, analyst_data, view, period) -> None:
    result = ch_client.query(
        f"SELECT * FROM {DB}.{view} WHERE unit = 'ana-north' AND touchpoint = 'web' "
        f"AND period_start = {{p:DateTime}}", parameters={"p": period})
    (row,) = [dict(zip(result.column_names, r)) for r in result.result_rows]
    assert (row["n"], row["nps_n"]) == (100, 100)
    nps, low, high = nps_interval(50, 20, 100)
    assert row["nps"] == pytest.approx(nps) and nps == pytest.approx(30.0)
    assert (row["nps_low"], row["nps_high"]) == pytest.approx((round(low, 2), round(high, 2)),
                                                              abs=0.011)
    d_low, d_high = wilson(20, 100)
    assert row["detractor_share"] == 0.2
    assert (row["detractor_share_low"], row["detractor_share_high"]) == pytest.approx(
        (round(d_low, 4), round(d_high, 4)), abs=1.1e-4)
    # CSAT 5, 4, 2 of 1-5 -> 100, 75, 25
    mean, c_low, c_high = mean_interval([100.0] * 50 + [75.0] * 30 + [25.0] * 20)
    assert mean == 77.5
    assert (row["csat"], row["csat_low"], row["csat_high"]) == pytest.approx(
        (77.5, round(c_low, 2), round(c_high, 2)), abs=0.011)
    t_low, t_high = wilson(80, 100)
    assert (row["csat_top_box_share"], row["csat_top_box_low"], row["csat_top_box_high"]) == (
        pytest.approx((0.8, round(t_low, 4), round(t_high, 4)), abs=1.1e-4))
    assert row["churn_intent"] == 5 and row["complaints"] == 20


def test_reference_implementations() -> None:
    """The test's own formulas against textbook values."""
    # adjusted Wald by hand: 50.75 / 31.5 / 20.75 of 103 (Rocks 2016)
    pa, da = 50.75 / 103, 20.75 / 103
    half = Z * 100 * math.sqrt((pa + da - (pa - da) ** 2) / 103)
    assert nps_interval(50, 20, 100) == pytest.approx((30.0, 100 * (pa - da) - half,
                                                       100 * (pa - da) + half))
    assert nps_interval(3, 0, 3)[1:] == pytest.approx((-6.5793, 100.0), abs=1e-4)
    assert wilson(20, 100) == pytest.approx((0.13344, 0.28883), abs=1e-4)  # textbook values
    assert wilson(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


# -- groups without some measures (a regression test: 0002 once produced NULL sums) ------

def test_aggregates_keep_groups_without_some_measures(ch_client) -> None:
    """An NPS-only event (no CSAT, CES or comment) must still reach quality_minute."""
    unit = f"ana-npsonly-{uuid.uuid4().hex[:8]}"
    from tests.analysts import conftest as data

    spec = data.Spec(f"{unit}-1", datetime(2025, 2, 3, 8, tzinfo=UTC), "web", unit, "ana-x",
                     "", 10, 5, 7, "Great service")
    row = data.nps_only_row(spec)
    insert(ch_client, [row])
    responses = ch_client.query(
        f"SELECT sum(responses) FROM {DB}.quality_minute WHERE unit = {{u:String}}",
        parameters={"u": unit}).result_rows[0][0]
    stored = ch_client.query(
        f"SELECT count() FROM {DB}.feedback_events WHERE unit = {{u:String}}",
        parameters={"u": unit}).result_rows[0][0]
    assert stored == 1
    assert responses == 1


def test_data_set_is_what_the_docstring_says() -> None:
    all_rows = rows()
    assert len(all_rows) == 140
    assert len({r[0] for r in all_rows}) == 140
    assert min(r[1] for r in all_rows) >= datetime(2025, 3, 3, tzinfo=UTC)
    assert max(r[1] for r in all_rows) < datetime(2025, 3, 17, tzinfo=UTC) - timedelta(days=1)
