-- The current fact of every call, one row per CallSid, for the consumer's
-- look-ups of a batch's calls (load_facts). call_facts is sorted by callSid
-- too, but a look-up there reads a whole 8192-row granule of every column
-- per key, and a batch's CallSids (random, as Twilio's are) fall into about
-- as many granules as the batch has calls: at 10 million calls that cost
-- about 3 ms a call, 5 s a batch. A key-value table answers each key, found
-- or not, without reading its neighbours. EmbeddedRocksDB keeps the row last
-- written per key; it is fed with every +1 row inserted into call_facts (the
-- new version of a fact; the consumer writes a call's versions in order) and
-- filled once from call_facts below, which is harmless to repeat. Like every
-- table here it lives on the one node that takes the inserts. A migration
-- that adds a fact column adds it here too and creates the view again.
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
    deletedRecordings, recordingStored, version
FROM ${database}.call_facts
WHERE sign = 1;

INSERT INTO ${database}.call_state
(
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, dialStatus, dialDurationSec, dialBridged,
    childStatus, childDurationSec, parentStatus, parentDurationSec, storedRecordings,
    deletedRecordings, recordingStored, version
)
SELECT
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
    durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry, routed,
    campaign, disposition, recordingEnabled, fallback, dialStatus, dialDurationSec, dialBridged,
    childStatus, childDurationSec, parentStatus, parentDurationSec, storedRecordings,
    deletedRecordings, recordingStored, version
FROM ${database}.call_facts FINAL;
