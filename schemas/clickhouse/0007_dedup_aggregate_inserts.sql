-- The aggregate tables fed by materialized views honour insert deduplication too. The sink sends
-- an insert_deduplication_token with deduplicate_blocks_in_dependent_materialized_views = 1, so
-- that an insert ClickHouse has already stored (a retry, or a replay that forms the same part)
-- is dropped in feedback_events AND in the aggregates; a non-replicated MergeTree deduplicates
-- only with a window, and without one a repeated insert was counted twice in the aggregates
-- (tests/scoring/test_sink_poison.py). On a cluster this becomes replicated_deduplication_window.
ALTER TABLE {db}.quality_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {db}.theme_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {db}.quality_hour MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {db}.quality_day MODIFY SETTING non_replicated_deduplication_window = 10000;
