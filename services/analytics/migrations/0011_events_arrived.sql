-- The consumer stores events by inserting the messages as they arrived, one
-- JSON object each, into events_arrived; ClickHouse takes the envelope
-- fields out of each message (the same names as the events columns) and
-- writes the row to events, with the message itself as the payload. The
-- messages were validated first, so every field the view reads is there or,
-- for callSid, clientId and requestId, may be missing ('' then). Null: the
-- table keeps nothing itself.
CREATE TABLE IF NOT EXISTS ${database}.events_arrived
(
    message String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.events_arrived_mv TO ${database}.events AS
SELECT
    JSONExtractString(message, 'id') AS id,
    JSONExtractString(message, 'type') AS type,
    toUInt16(JSONExtractUInt(message, 'version')) AS version,
    JSONExtractString(message, 'callSid') AS callSid,
    JSONExtractString(message, 'clientId') AS clientId,
    parseDateTime64BestEffort(JSONExtractString(message, 'occurredAt'), 3, 'UTC') AS occurredAt,
    JSONExtractString(message, 'source') AS source,
    JSONExtractString(message, 'requestId') AS requestId,
    message AS payload
FROM ${database}.events_arrived;
