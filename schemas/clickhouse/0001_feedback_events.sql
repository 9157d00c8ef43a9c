-- One row per scored feedback event. The sink inserts each event once (it filters event ids
-- already stored and sends an insert deduplication token per batch); ReplacingMergeTree on
-- the full sorting key is the last line of defence, since an event's key columns never change.
CREATE TABLE IF NOT EXISTS {db}.feedback_events
(
    event_id           String COMMENT 'Idempotency key given by the touchpoint or derived from content',
    occurred_at        DateTime64(3, 'UTC') COMMENT 'When the customer gave the feedback',
    accepted_at        DateTime64(3, 'UTC') COMMENT 'When the pipeline accepted it (Kafka timestamp)',
    scored_at          DateTime64(3, 'UTC') COMMENT 'When the scorer processed it',
    inserted_at        DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When the row reached ClickHouse',
    touchpoint         LowCardinality(String) COMMENT 'web, app, call_centre, store, survey_email, chat, kiosk, internal',
    source             LowCardinality(String) COMMENT 'Sending system',
    unit               LowCardinality(String) COMMENT 'Organisational unit or location',
    segment            LowCardinality(String) COMMENT 'Customer segment',
    customer_id        String COMMENT 'Pseudonymous customer id, empty if unknown',
    internal           Bool COMMENT 'Employee (internal customer) feedback',
    nps                Nullable(UInt8) COMMENT 'Likelihood to recommend 0-10',
    nps_category       LowCardinality(String) COMMENT 'promoter (9-10), passive (7-8), detractor (0-6); empty without NPS',
    csat               Nullable(Float32) COMMENT 'Satisfaction on 0-100 (100 best)',
    csat_top_box       Nullable(Bool) COMMENT 'Satisfaction answer in the top two boxes of its scale',
    ces                Nullable(Float32) COMMENT 'Ease (customer effort) on 0-100 (100 easiest)',
    rating             Nullable(Float32) COMMENT 'Mean of other ratings on 0-100',
    sqi                Nullable(Float32) COMMENT 'Service-quality index 0-100: weighted mean of available scores',
    response_metrics   Array(LowCardinality(String)) COMMENT 'Original answers: metric',
    response_values    Array(Float64) COMMENT 'Original answers: value on its scale',
    response_scale_min Array(Float64) COMMENT 'Original answers: scale minimum',
    response_scale_max Array(Float64) COMMENT 'Original answers: scale maximum',
    comment            String COMMENT 'Free-text comment (PII-redacted where configured)',
    language           LowCardinality(String) COMMENT 'ISO 639-1 language of the comment',
    sentiment          Nullable(Float32) COMMENT 'Comment sentiment -1..1',
    sentiment_label    LowCardinality(String) COMMENT 'positive, neutral, negative; empty without comment',
    themes             Array(LowCardinality(String)) COMMENT 'Themes mentioned',
    negative_themes    Array(LowCardinality(String)) COMMENT 'Themes mentioned in a negative clause',
    churn_intent       Bool COMMENT 'The comment states an intent to leave',
    complaint          Bool COMMENT 'The comment is a complaint',
    recommend_intent   Bool COMMENT 'The comment states intent to recommend or buy again',
    scorer_version     LowCardinality(String) COMMENT 'Version of the scorer that produced this row',
    kafka_partition    UInt16 COMMENT 'Partition of the scored topic',
    kafka_offset       UInt64 COMMENT 'Offset in that partition',
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_customer customer_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (touchpoint, unit, segment, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000
