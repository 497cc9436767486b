-- Voicemail (issue 19): the caller's <Record> recording as evidence of the
-- call's fact, and `voicemail` as an outcome that counts as missed. Rows
-- written before are calls without a voicemail.
ALTER TABLE ${database}.call_facts ADD COLUMN IF NOT EXISTS voicemailSid String DEFAULT '';
ALTER TABLE ${database}.call_facts ADD COLUMN IF NOT EXISTS voicemailDurationSec UInt32 DEFAULT 0;
ALTER TABLE ${database}.client_hourly ADD COLUMN IF NOT EXISTS voicemail Int64 DEFAULT 0;

-- A view keeps the columns it had when created (SELECT * is not re-read).
CREATE OR REPLACE VIEW ${database}.calls AS
SELECT * FROM ${database}.call_facts FINAL;

-- The feeds name their columns, so they are created again. Run migrations
-- before the consumer starts: a fact written between these statements would
-- not be copied.
-- EmbeddedRocksDB cannot add a column: call_state (only the consumer's
-- look-up copy of call_facts, see 0013) is dropped, created again with the
-- new columns and filled from call_facts.
DROP VIEW IF EXISTS ${database}.call_state_mv;

DROP TABLE IF EXISTS ${database}.call_state;

CREATE TABLE IF NOT EXISTS ${database}.call_state
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
    storedRecordings Array(String),
    deletedRecordings Array(String),
    recordingStored UInt8,
    voicemailSid String,
    voicemailDurationSec UInt32,
    version UInt64
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY callSid;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.call_state_mv TO ${database}.call_state AS
SELECT
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, dialStatus, dialDurationSec, dialBridged,
    childStatus, childDurationSec, parentStatus, parentDurationSec, storedRecordings,
    deletedRecordings, recordingStored, voicemailSid, voicemailDurationSec, version
FROM ${database}.call_facts
WHERE sign = 1;

INSERT INTO ${database}.call_state
(
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, dialStatus, dialDurationSec, dialBridged,
    childStatus, childDurationSec, parentStatus, parentDurationSec, storedRecordings,
    deletedRecordings, recordingStored, voicemailSid, voicemailDurationSec, version
)
SELECT
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, dialStatus, dialDurationSec, dialBridged,
    childStatus, childDurationSec, parentStatus, parentDurationSec, storedRecordings,
    deletedRecordings, recordingStored, voicemailSid, voicemailDurationSec, version
FROM ${database}.call_facts FINAL;

-- A voicemail is a missed call (with a message), and is counted on its own
-- too. Hours summed before keep their counts: no call was voicemail then.
DROP VIEW IF EXISTS ${database}.client_hourly_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.client_hourly_mv TO ${database}.client_hourly AS
SELECT
    clientId,
    toStartOfHour(startedAt) AS hour,
    sum(sign) AS calls,
    sumIf(sign, direction = 'inbound') AS inbound,
    sumIf(sign, direction = 'outbound') AS outbound,
    sumIf(sign, status = 'completed') AS completed,
    sumIf(sign, status IN ('no-answer', 'busy', 'failed', 'canceled', 'voicemail')) AS missed,
    sumIf(sign, answered = 1) AS answered,
    sumIf(sign, status = 'unrouted') AS unrouted,
    sumIf(sign, recorded = 1) AS recorded,
    sum(sign * toInt64(durationSec)) AS durationSec,
    sumIf(sign, status = 'voicemail') AS voicemail
FROM ${database}.calls_by_client
GROUP BY clientId, hour;
