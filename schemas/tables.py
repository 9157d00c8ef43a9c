"""Column order of the `kundensprechen.feedback_events` rows the sink writes (the inserted
columns of schemas/clickhouse/0001_feedback_events.sql, all but `inserted_at`). Shared by the
writer (scoring) and the readers (alerts backtest, analysts' tools)."""

FEEDBACK_EVENTS_COLUMNS: tuple[str, ...] = (
    "event_id", "occurred_at", "accepted_at", "scored_at", "touchpoint", "source", "unit",
    "segment", "customer_id", "internal", "nps", "nps_category", "csat", "csat_top_box", "ces",
    "rating", "sqi", "response_metrics", "response_values", "response_scale_min",
    "response_scale_max", "comment", "language", "sentiment", "sentiment_label", "themes",
    "negative_themes", "churn_intent", "complaint", "recommend_intent", "scorer_version",
    "kafka_partition", "kafka_offset",
)
