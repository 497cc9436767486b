-- The read audit (services/analytics/audit.py): one row per answered read,
-- export or conversion. Append only: rows are never updated, and ids (the
-- time in microseconds, unique per process) order them newest first.
-- clientId is '' for a read across all clients; details is a JSON object.
CREATE TABLE IF NOT EXISTS ${database}.audit_log
(
    id UInt64,
    at DateTime64(3, 'UTC'),
    actor String,
    action LowCardinality(String),
    targetType LowCardinality(String),
    targetId String,
    clientId String,
    details String
)
ENGINE = MergeTree
ORDER BY (at, id);
