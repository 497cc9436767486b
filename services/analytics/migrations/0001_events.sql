-- Every event as it arrived, one row per event id. ReplacingMergeTree drops
-- a redelivered event on merge; the consumer also skips ids already stored.
-- callSid and occurredAt never change for one id, so both may sit in the
-- sort key and the partition key without splitting an event's duplicates.
CREATE TABLE IF NOT EXISTS ${database}.events
(
    id String,
    type LowCardinality(String),
    version UInt16,
    callSid String,
    clientId String,
    occurredAt DateTime64(3, 'UTC'),
    source LowCardinality(String),
    requestId String,
    payload String,
    insertedAt DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurredAt)
ORDER BY (callSid, id);
