-- Every row written to call_facts (both signs) is copied to calls_by_client,
-- and from there summed into client_hourly. Facts stored before this
-- migration are copied once; the guard keeps a repeated run from copying
-- them again. The INSERT names its columns so that a repeated run still
-- fits after later migrations added columns (0010).
CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.calls_by_client_mv TO ${database}.calls_by_client AS
SELECT
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, parentDurationSec, version, sign
FROM ${database}.call_facts;

INSERT INTO ${database}.calls_by_client
(
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, parentDurationSec, version, sign
)
SELECT
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, parentDurationSec, version, 1 AS sign
FROM ${database}.call_facts FINAL
WHERE (SELECT count() FROM ${database}.calls_by_client) = 0;
