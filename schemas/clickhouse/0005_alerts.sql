-- Alert history of the alerts service: every alert state change (firing, resolved) and every
-- case event (the case lifecycle; the Kafka topic ksp.alerts.cases is the source of truth).
-- Both are keyed so that a retried insert replaces rather than duplicates (ReplacingMergeTree).
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id         String COMMENT 'Alert id (the case id of the case it opened)',
    fingerprint      String COMMENT 'Stable identity of the condition (rule + scope)',
    kind             LowCardinality(String) COMMENT 'aggregate_drop, theme_surge, churn_risk',
    rule             LowCardinality(String) COMMENT 'Rule that raised it',
    detector_version LowCardinality(String) COMMENT 'Detector version',
    severity         LowCardinality(String) COMMENT 'info, warning, critical',
    status           LowCardinality(String) COMMENT 'firing or resolved',
    touchpoint       LowCardinality(String) COMMENT 'Scope: touchpoint, empty if not scoped',
    unit             LowCardinality(String) COMMENT 'Scope: unit, empty if not scoped',
    customer_id      String COMMENT 'Scope: customer, empty if not scoped',
    labels           Map(String, String) COMMENT 'All scope labels',
    summary          String COMMENT 'One-line description',
    evidence         String COMMENT 'AlertEvidence as JSON',
    starts_at        DateTime64(3, 'UTC') COMMENT 'When the condition started',
    ends_at          Nullable(DateTime64(3, 'UTC')) COMMENT 'When it ended (resolved)',
    recorded_at      DateTime64(3, 'UTC') COMMENT 'When the alerts service recorded this change'
)
ENGINE = ReplacingMergeTree(recorded_at)
PARTITION BY toYYYYMM(starts_at)
ORDER BY (alert_id, status);

CREATE TABLE IF NOT EXISTS {db}.alert_events
(
    case_id     String COMMENT 'Case id (the alert id that opened it)',
    sequence    UInt32 COMMENT 'Position in the case history, from 0',
    action      LowCardinality(String) COMMENT 'opened, acknowledged, assigned, commented, resolved, condition_cleared, escalated, silenced, recovered',
    at          DateTime64(3, 'UTC') COMMENT 'When it happened',
    by          String COMMENT 'User name or system',
    assignee    String COMMENT 'On assigned: the assignee',
    outcome     LowCardinality(String) COMMENT 'On resolved: the outcome',
    note        String COMMENT 'Comment or note',
    state_after LowCardinality(String) COMMENT 'Case state after this event',
    fingerprint String COMMENT 'Alert fingerprint',
    kind        LowCardinality(String) COMMENT 'Alert kind',
    rule        LowCardinality(String) COMMENT 'Alert rule',
    severity    LowCardinality(String) COMMENT 'Alert severity',
    touchpoint  LowCardinality(String) COMMENT 'Scope: touchpoint',
    unit        LowCardinality(String) COMMENT 'Scope: unit',
    customer_id String COMMENT 'Scope: customer',
    details     String COMMENT 'Event details as JSON (due_at, recovered, overdue_s, ...)',
    event       String COMMENT 'The full CaseEvent as JSON'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (case_id, sequence);
