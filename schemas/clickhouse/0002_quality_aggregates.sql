-- Minute, hour and day aggregates per touchpoint x unit x segment, kept by materialized views.
-- SummingMergeTree adds rows with equal keys at merge time: always query with sum() and GROUP BY.
-- sumIf over a Nullable column is Nullable (NULL for a group without answers): assumeNotNull
-- keeps the sums Float64, which the target columns require.
CREATE TABLE IF NOT EXISTS {db}.quality_minute
(
    minute           DateTime('UTC'),
    touchpoint       LowCardinality(String),
    unit             LowCardinality(String),
    segment          LowCardinality(String),
    internal         Bool,
    responses        UInt64,
    nps_n            UInt64,
    promoters        UInt64,
    passives         UInt64,
    detractors       UInt64,
    csat_n           UInt64,
    csat_sum         Float64,
    csat_sumsq       Float64,
    csat_top_box     UInt64,
    ces_n            UInt64,
    ces_sum          Float64,
    ces_sumsq        Float64,
    sqi_n            UInt64,
    sqi_sum          Float64,
    sqi_sumsq        Float64,
    sentiment_n      UInt64,
    sentiment_sum    Float64,
    sentiment_sumsq  Float64,
    negative_comments UInt64,
    churn_intent     UInt64,
    complaints       UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (touchpoint, unit, segment, internal, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quality_minute_mv TO {db}.quality_minute AS
SELECT
    toStartOfMinute(occurred_at) AS minute,
    touchpoint, unit, segment, internal,
    count() AS responses,
    countIf(nps IS NOT NULL) AS nps_n,
    countIf(nps_category = 'promoter') AS promoters,
    countIf(nps_category = 'passive') AS passives,
    countIf(nps_category = 'detractor') AS detractors,
    countIf(csat IS NOT NULL) AS csat_n,
    sumIf(toFloat64(assumeNotNull(csat)), csat IS NOT NULL) AS csat_sum,
    sumIf(toFloat64(assumeNotNull(csat)) * toFloat64(assumeNotNull(csat)), csat IS NOT NULL) AS csat_sumsq,
    countIf(csat_top_box = true) AS csat_top_box,
    countIf(ces IS NOT NULL) AS ces_n,
    sumIf(toFloat64(assumeNotNull(ces)), ces IS NOT NULL) AS ces_sum,
    sumIf(toFloat64(assumeNotNull(ces)) * toFloat64(assumeNotNull(ces)), ces IS NOT NULL) AS ces_sumsq,
    countIf(sqi IS NOT NULL) AS sqi_n,
    sumIf(toFloat64(assumeNotNull(sqi)), sqi IS NOT NULL) AS sqi_sum,
    sumIf(toFloat64(assumeNotNull(sqi)) * toFloat64(assumeNotNull(sqi)), sqi IS NOT NULL) AS sqi_sumsq,
    countIf(sentiment IS NOT NULL) AS sentiment_n,
    sumIf(toFloat64(assumeNotNull(sentiment)), sentiment IS NOT NULL) AS sentiment_sum,
    sumIf(toFloat64(assumeNotNull(sentiment)) * toFloat64(assumeNotNull(sentiment)), sentiment IS NOT NULL) AS sentiment_sumsq,
    countIf(sentiment_label = 'negative') AS negative_comments,
    countIf(churn_intent) AS churn_intent,
    countIf(complaint) AS complaints
FROM {db}.feedback_events
GROUP BY minute, touchpoint, unit, segment, internal;

CREATE TABLE IF NOT EXISTS {db}.theme_minute
(
    minute            DateTime('UTC'),
    touchpoint        LowCardinality(String),
    unit              LowCardinality(String),
    segment           LowCardinality(String),
    internal          Bool,
    theme             LowCardinality(String),
    mentions          UInt64,
    negative_mentions UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (touchpoint, unit, segment, internal, theme, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.theme_minute_mv TO {db}.theme_minute AS
SELECT
    toStartOfMinute(occurred_at) AS minute,
    touchpoint, unit, segment, internal, theme,
    count() AS mentions,
    countIf(has(negative_themes, theme)) AS negative_mentions
FROM {db}.feedback_events
ARRAY JOIN themes AS theme
GROUP BY minute, touchpoint, unit, segment, internal, theme
