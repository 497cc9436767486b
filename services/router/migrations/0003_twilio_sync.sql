-- Keeping each number's configuration at Twilio (Voice URL, status callback,
-- Voice Fallback URL) in step with who holds it.

-- What Twilio last accepted for the number, so a change of this deployment's
-- public URL or fallback is noticed at start-up.
ALTER TABLE owned_numbers
    ADD COLUMN twilio_config    jsonb       NULL,
    ADD COLUMN twilio_synced_at timestamptz NULL;

-- Numbers whose configuration at Twilio is to be brought up to date, written
-- in the transaction of the change that caused it and removed once Twilio
-- accepted the configuration. `version` tells a newer request from the one a
-- sync was working on.
CREATE SEQUENCE twilio_sync_version;

CREATE TABLE twilio_sync (
    phone_number text        PRIMARY KEY REFERENCES owned_numbers (phone_number) ON DELETE CASCADE,
    version      bigint      NOT NULL DEFAULT nextval('twilio_sync_version'),
    requested_at timestamptz NOT NULL DEFAULT now(),
    due_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text        NULL
);

CREATE INDEX twilio_sync_due_at_idx ON twilio_sync (due_at);
