-- Per client and UTC hour, the counts the dashboards chart. Every row copied
-- into calls_by_client adds its sign (-1 for a cancelled version), so the
-- sums are those of the current versions only. SummingMergeTree adds rows up
-- on merge and drops those that sum to zero; read with sum() ... GROUP BY.
CREATE TABLE IF NOT EXISTS ${database}.client_hourly
(
    clientId String,
    hour DateTime('UTC'),
    calls Int64,
    inbound Int64,
    outbound Int64,
    completed Int64,
    missed Int64,
    answered Int64,
    unrouted Int64,
    recorded Int64,
    durationSec Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (clientId, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.client_hourly_mv TO ${database}.client_hourly AS
SELECT
    clientId,
    toStartOfHour(startedAt) AS hour,
    sum(sign) AS calls,
    sumIf(sign, direction = 'inbound') AS inbound,
    sumIf(sign, direction = 'outbound') AS outbound,
    sumIf(sign, status = 'completed') AS completed,
    sumIf(sign, status IN ('no-answer', 'busy', 'failed', 'canceled')) AS missed,
    sumIf(sign, answered = 1) AS answered,
    sumIf(sign, status = 'unrouted') AS unrouted,
    sumIf(sign, recorded = 1) AS recorded,
    sum(sign * toInt64(durationSec)) AS durationSec
FROM ${database}.calls_by_client
GROUP BY clientId, hour;
