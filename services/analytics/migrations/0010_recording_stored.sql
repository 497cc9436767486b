-- Whether a stored recording exists (recording.stored less recording.deleted),
-- with the RecordingSids it is derived from kept as evidence in call_facts.
-- Rows written before are calls without a stored recording.
ALTER TABLE ${database}.call_facts ADD COLUMN IF NOT EXISTS storedRecordings Array(String) DEFAULT [];
ALTER TABLE ${database}.call_facts ADD COLUMN IF NOT EXISTS deletedRecordings Array(String) DEFAULT [];
ALTER TABLE ${database}.call_facts ADD COLUMN IF NOT EXISTS recordingStored UInt8 DEFAULT 0;
ALTER TABLE ${database}.calls_by_client ADD COLUMN IF NOT EXISTS recordingStored UInt8 DEFAULT 0;

-- A view keeps the columns it had when created (SELECT * is not re-read), so
-- both views are created again to show the new columns.
CREATE OR REPLACE VIEW ${database}.calls AS
SELECT * FROM ${database}.call_facts FINAL;

CREATE OR REPLACE VIEW ${database}.client_calls AS
SELECT * FROM ${database}.calls_by_client FINAL WHERE sign = 1;

-- The feed names its columns, so it is created again with the new one. Run
-- migrations before the consumer starts: a fact written between these two
-- statements would not be copied.
DROP VIEW IF EXISTS ${database}.calls_by_client_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.calls_by_client_mv TO ${database}.calls_by_client AS
SELECT
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, parentDurationSec, recordingStored,
    version, sign
FROM ${database}.call_facts;
