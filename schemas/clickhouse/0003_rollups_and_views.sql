-- Hourly and daily rollups of the minute aggregates (chained materialized views), and analyst
-- views with 95% intervals: Wilson score intervals for shares, the multinomial variance for NPS,
-- normal intervals for means. z = 1.959964 (95%).
CREATE TABLE IF NOT EXISTS {db}.quality_hour
(
    hour DateTime('UTC'),
    touchpoint LowCardinality(String),
    unit LowCardinality(String),
    segment LowCardinality(String),
    internal Bool,
    responses UInt64,
    nps_n UInt64,
    promoters UInt64,
    passives UInt64,
    detractors UInt64,
    csat_n UInt64,
    csat_sum Float64,
    csat_sumsq Float64,
    csat_top_box UInt64,
    ces_n UInt64,
    ces_sum Float64,
    ces_sumsq Float64,
    sqi_n UInt64,
    sqi_sum Float64,
    sqi_sumsq Float64,
    sentiment_n UInt64,
    sentiment_sum Float64,
    sentiment_sumsq Float64,
    negative_comments UInt64,
    churn_intent UInt64,
    complaints UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (touchpoint, unit, segment, internal, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quality_hour_mv TO {db}.quality_hour AS
SELECT toStartOfHour(minute) AS hour, touchpoint, unit, segment, internal,
    sum(responses) AS responses,
    sum(nps_n) AS nps_n,
    sum(promoters) AS promoters,
    sum(passives) AS passives,
    sum(detractors) AS detractors,
    sum(csat_n) AS csat_n,
    sum(csat_sum) AS csat_sum,
    sum(csat_sumsq) AS csat_sumsq,
    sum(csat_top_box) AS csat_top_box,
    sum(ces_n) AS ces_n,
    sum(ces_sum) AS ces_sum,
    sum(ces_sumsq) AS ces_sumsq,
    sum(sqi_n) AS sqi_n,
    sum(sqi_sum) AS sqi_sum,
    sum(sqi_sumsq) AS sqi_sumsq,
    sum(sentiment_n) AS sentiment_n,
    sum(sentiment_sum) AS sentiment_sum,
    sum(sentiment_sumsq) AS sentiment_sumsq,
    sum(negative_comments) AS negative_comments,
    sum(churn_intent) AS churn_intent,
    sum(complaints) AS complaints
FROM {db}.quality_minute
GROUP BY hour, touchpoint, unit, segment, internal;

CREATE TABLE IF NOT EXISTS {db}.quality_day
(
    day DateTime('UTC'),
    touchpoint LowCardinality(String),
    unit LowCardinality(String),
    segment LowCardinality(String),
    internal Bool,
    responses UInt64,
    nps_n UInt64,
    promoters UInt64,
    passives UInt64,
    detractors UInt64,
    csat_n UInt64,
    csat_sum Float64,
    csat_sumsq Float64,
    csat_top_box UInt64,
    ces_n UInt64,
    ces_sum Float64,
    ces_sumsq Float64,
    sqi_n UInt64,
    sqi_sum Float64,
    sqi_sumsq Float64,
    sentiment_n UInt64,
    sentiment_sum Float64,
    sentiment_sumsq Float64,
    negative_comments UInt64,
    churn_intent UInt64,
    complaints UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (touchpoint, unit, segment, internal, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quality_day_mv TO {db}.quality_day AS
SELECT toStartOfDay(minute) AS day, touchpoint, unit, segment, internal,
    sum(responses) AS responses,
    sum(nps_n) AS nps_n,
    sum(promoters) AS promoters,
    sum(passives) AS passives,
    sum(detractors) AS detractors,
    sum(csat_n) AS csat_n,
    sum(csat_sum) AS csat_sum,
    sum(csat_sumsq) AS csat_sumsq,
    sum(csat_top_box) AS csat_top_box,
    sum(ces_n) AS ces_n,
    sum(ces_sum) AS ces_sum,
    sum(ces_sumsq) AS ces_sumsq,
    sum(sqi_n) AS sqi_n,
    sum(sqi_sum) AS sqi_sum,
    sum(sqi_sumsq) AS sqi_sumsq,
    sum(sentiment_n) AS sentiment_n,
    sum(sentiment_sum) AS sentiment_sum,
    sum(sentiment_sumsq) AS sentiment_sumsq,
    sum(negative_comments) AS negative_comments,
    sum(churn_intent) AS churn_intent,
    sum(complaints) AS complaints
FROM {db}.quality_minute
GROUP BY day, touchpoint, unit, segment, internal;

CREATE VIEW IF NOT EXISTS {db}.quality_hourly AS
SELECT
    hour AS period_start, touchpoint, unit, segment, internal, n, nps_n,
    round(100 * (p - d), 2) AS nps,
    round(greatest(-100, 100 * ((p - d) - 1.959964 * sqrt((p + d - pow(p - d, 2)) / nps_n))), 2) AS nps_low,
    round(least(100, 100 * ((p - d) + 1.959964 * sqrt((p + d - pow(p - d, 2)) / nps_n))), 2) AS nps_high,
    round(d, 4) AS detractor_share,
    round(((detractors / nps_n) + 1.920729 / nps_n - 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_low,
    round(((detractors / nps_n) + 1.920729 / nps_n + 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_high,
    csat_n, round(csat_sum / csat_n, 2) AS csat,
    round(csat_sum / csat_n - 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_low,
    round(csat_sum / csat_n + 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_high,
    round(csat_top_box / csat_n, 4) AS csat_top_box_share,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n - 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_low,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n + 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_high,
    ces_n, round(ces_sum / ces_n, 2) AS ces,
    round(ces_sum / ces_n - 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_low,
    round(ces_sum / ces_n + 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_high,
    sqi_n, round(sqi_sum / sqi_n, 2) AS sqi,
    sentiment_n, round(sentiment_sum / sentiment_n, 3) AS sentiment,
    round(sentiment_sum / sentiment_n - 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_low,
    round(sentiment_sum / sentiment_n + 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_high,
    churn_intent, complaints
FROM
(
    SELECT hour, touchpoint, unit, segment, internal,
        sum(responses) AS n, sum(nps_n) AS nps_n, sum(promoters) AS promoters, sum(detractors) AS detractors,
        promoters / nps_n AS p, detractors / nps_n AS d,
        sum(csat_n) AS csat_n, sum(csat_sum) AS csat_sum, sum(csat_sumsq) AS csat_sumsq, sum(csat_top_box) AS csat_top_box,
        sum(ces_n) AS ces_n, sum(ces_sum) AS ces_sum, sum(ces_sumsq) AS ces_sumsq,
        sum(sqi_n) AS sqi_n, sum(sqi_sum) AS sqi_sum,
        sum(sentiment_n) AS sentiment_n, sum(sentiment_sum) AS sentiment_sum, sum(sentiment_sumsq) AS sentiment_sumsq,
        sum(churn_intent) AS churn_intent, sum(complaints) AS complaints
    FROM {db}.quality_hour
    GROUP BY hour, touchpoint, unit, segment, internal
);

CREATE VIEW IF NOT EXISTS {db}.quality_daily AS
SELECT
    day AS period_start, touchpoint, unit, segment, internal, n, nps_n,
    round(100 * (p - d), 2) AS nps,
    round(greatest(-100, 100 * ((p - d) - 1.959964 * sqrt((p + d - pow(p - d, 2)) / nps_n))), 2) AS nps_low,
    round(least(100, 100 * ((p - d) + 1.959964 * sqrt((p + d - pow(p - d, 2)) / nps_n))), 2) AS nps_high,
    round(d, 4) AS detractor_share,
    round(((detractors / nps_n) + 1.920729 / nps_n - 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_low,
    round(((detractors / nps_n) + 1.920729 / nps_n + 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_high,
    csat_n, round(csat_sum / csat_n, 2) AS csat,
    round(csat_sum / csat_n - 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_low,
    round(csat_sum / csat_n + 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_high,
    round(csat_top_box / csat_n, 4) AS csat_top_box_share,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n - 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_low,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n + 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_high,
    ces_n, round(ces_sum / ces_n, 2) AS ces,
    round(ces_sum / ces_n - 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_low,
    round(ces_sum / ces_n + 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_high,
    sqi_n, round(sqi_sum / sqi_n, 2) AS sqi,
    sentiment_n, round(sentiment_sum / sentiment_n, 3) AS sentiment,
    round(sentiment_sum / sentiment_n - 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_low,
    round(sentiment_sum / sentiment_n + 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_high,
    churn_intent, complaints
FROM
(
    SELECT day, touchpoint, unit, segment, internal,
        sum(responses) AS n, sum(nps_n) AS nps_n, sum(promoters) AS promoters, sum(detractors) AS detractors,
        promoters / nps_n AS p, detractors / nps_n AS d,
        sum(csat_n) AS csat_n, sum(csat_sum) AS csat_sum, sum(csat_sumsq) AS csat_sumsq, sum(csat_top_box) AS csat_top_box,
        sum(ces_n) AS ces_n, sum(ces_sum) AS ces_sum, sum(ces_sumsq) AS ces_sumsq,
        sum(sqi_n) AS sqi_n, sum(sqi_sum) AS sqi_sum,
        sum(sentiment_n) AS sentiment_n, sum(sentiment_sum) AS sentiment_sum, sum(sentiment_sumsq) AS sentiment_sumsq,
        sum(churn_intent) AS churn_intent, sum(complaints) AS complaints
    FROM {db}.quality_day
    GROUP BY day, touchpoint, unit, segment, internal
)
