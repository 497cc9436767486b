-- One row per CallSid once merged: each change of a call's fact inserts a new
-- row with a higher `version`, and ReplacingMergeTree(version) keeps the
-- highest. Dedupe happens only among rows with the same sort key in the same
-- partition, so neither key may hold a column that changes between versions
-- (clientId arrives late, startedAt is refined): sorted by callSid alone, no
-- partitions. Read through the `calls` view (FINAL), never this table.
CREATE TABLE IF NOT EXISTS ${database}.call_facts
(
    callSid String,
    clientId String,
    direction LowCardinality(String),
    fromNumber String,
    toNumber String,
    forwardedTo String,
    status LowCardinality(String),
    answered UInt8,
    durationSec UInt32,
    startedAt DateTime64(3, 'UTC'),
    endedAt Nullable(DateTime64(3, 'UTC')),
    recorded UInt8,
    callerCity String,
    callerState String,
    callerCountry String,
    routed UInt8,
    campaign String,
    disposition LowCardinality(String),
    recordingEnabled UInt8,
    fallback UInt8,
    dialStatus LowCardinality(String),
    dialDurationSec UInt32,
    dialBridged LowCardinality(String),
    childStatus LowCardinality(String),
    childDurationSec UInt32,
    parentStatus LowCardinality(String),
    parentDurationSec UInt32,
    version UInt64,
    updatedAt DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY callSid;
