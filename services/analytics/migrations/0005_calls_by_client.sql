-- The call facts again, sorted for what every metric asks: one client over a
-- time range. clientId and startedAt can change between versions of a call
-- (the routing decision arrives late, an earlier event refines the start),
-- so versions are cancelled explicitly: VersionedCollapsingMergeTree drops
-- a +1 row and the -1 row of the same sort key and version. Both rows of a
-- pair share startedAt, hence the month partition. Read with FINAL and
-- sign = 1 (the `client_calls` view); filters on clientId and startedAt use
-- the primary key. Fed from call_facts by calls_by_client_mv (0007).
CREATE TABLE IF NOT EXISTS ${database}.calls_by_client
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
    callerCity LowCardinality(String),
    callerState LowCardinality(String),
    callerCountry LowCardinality(String),
    routed UInt8,
    campaign LowCardinality(String),
    disposition LowCardinality(String),
    recordingEnabled UInt8,
    fallback UInt8,
    parentDurationSec UInt32,
    version UInt64,
    sign Int8
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(startedAt)
ORDER BY (clientId, startedAt, callSid);

-- The current calls, one row each, for dashboards and ad-hoc SQL.
CREATE VIEW IF NOT EXISTS ${database}.client_calls AS
SELECT * FROM ${database}.calls_by_client FINAL WHERE sign = 1;
