-- Who held each Twilio number when (from number.assigned / number.released),
-- for attributing calls whose routing decision is missing or has no
-- campaign, and for the number cost of a campaign. One row per assignment
-- period; the newest report (version = occurredAt in ms) wins.
CREATE TABLE IF NOT EXISTS ${database}.number_assignments
(
    phoneNumber String,
    assignedAt DateTime64(3, 'UTC'),
    clientId String,
    campaign String,
    releasedAt Nullable(DateTime64(3, 'UTC')),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (phoneNumber, assignedAt);

-- Each client's reporting settings (from client.settings-changed).
CREATE TABLE IF NOT EXISTS ${database}.client_settings
(
    clientId String,
    name String,
    timezone Nullable(String),
    valuePerConversion Nullable(Float64),
    leadShortSec Nullable(UInt32),
    leadLongSec Nullable(UInt32),
    leadQualifiedSec Nullable(UInt32),
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY clientId;
