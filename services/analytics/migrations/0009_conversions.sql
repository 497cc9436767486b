-- Conversions recorded through POST /api/analytics/conversions: one per call,
-- a repeated POST replaces the value (version = time of recording in ms).
-- Sorted by client first, so one client's conversions are read by range.
CREATE TABLE IF NOT EXISTS ${database}.conversions
(
    clientId String,
    callSid String,
    value Float64,
    recordedAt DateTime64(3, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (clientId, callSid);
