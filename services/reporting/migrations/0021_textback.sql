-- The missed-call text-back's memory: each number's text-back setting (from
-- number events), one row per call weighed (the idempotency key is the
-- CallSid), and who opted out of texts from which number.
CREATE TABLE IF NOT EXISTS reporting.textback_numbers (
    phone_number text PRIMARY KEY,
    client_id text,
    -- null: the number has no text-back (none in its flow, or it was released)
    message text,
    cooldown_hours integer,
    changed_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reporting.textback_calls (
    call_sid text PRIMARY KEY,
    phone_number text NOT NULL,
    caller text NOT NULL,
    client_id text,
    decided_at timestamptz NOT NULL,
    -- sending: claimed, Twilio asked (or about to be); never asked again
    status text NOT NULL
        CHECK (status IN ('sending', 'sent', 'skipped', 'refused', 'failed')),
    reason text,
    body text,
    message_sid text,
    message_status text,
    sent_at timestamptz,
    error_code integer,
    -- whether sms.sent is on Kafka
    published boolean NOT NULL DEFAULT false
);

-- The cooldown looks up the latest text to a caller from a number.
CREATE INDEX IF NOT EXISTS textback_calls_texted
    ON reporting.textback_calls (phone_number, caller, decided_at DESC)
    WHERE status IN ('sending', 'sent');

CREATE TABLE IF NOT EXISTS reporting.textback_opt_outs (
    phone_number text NOT NULL,
    caller text NOT NULL,
    opted_out_at timestamptz NOT NULL,
    -- the text Twilio refused with 21610, which told us
    call_sid text,
    PRIMARY KEY (phone_number, caller)
);
