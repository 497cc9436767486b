-- Client settings (recording, retention, ROI inputs), the number inventory
-- and its pool, client API keys, the audit log and the event outbox.

ALTER TABLE clients
    ADD COLUMN recording_enabled    boolean       NOT NULL DEFAULT true,
    ADD COLUMN recording_disclaimer text          NULL,
    ADD COLUMN retention_days       integer       NULL CHECK (retention_days BETWEEN 1 AND 36500),
    ADD COLUMN delete_from_twilio   boolean       NOT NULL DEFAULT false,
    ADD COLUMN monthly_revenue      numeric(14,2) NULL CHECK (monthly_revenue >= 0),
    ADD COLUMN value_per_conversion numeric(14,2) NULL CHECK (value_per_conversion >= 0),
    ADD COLUMN updated_at           timestamptz   NOT NULL DEFAULT now();

-- A number's own recording settings are now overrides: NULL follows its client.
-- Recording was the default before and every client records by default now,
-- so "true" becomes "follow the client" without changing how any call is
-- answered today.
ALTER TABLE phone_numbers
    ALTER COLUMN record DROP NOT NULL,
    ALTER COLUMN record DROP DEFAULT,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

UPDATE phone_numbers SET record = NULL WHERE record;

-- Every number the business holds, assigned or not. A number with no row in
-- phone_numbers is in the pool, answered with the not-in-service message;
-- the one that rested longest is handed out first.
CREATE TABLE owned_numbers (
    phone_number text        PRIMARY KEY,
    twilio_sid   text        NULL UNIQUE,
    locality     text        NULL,
    region       text        NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    pooled_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO owned_numbers (phone_number, acquired_at, pooled_at)
SELECT phone_number, assigned_at, assigned_at FROM phone_numbers;

CREATE INDEX owned_numbers_pooled_at_idx ON owned_numbers (pooled_at);

-- Client API keys: only the SHA-256 of the key is kept.
CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id  uuid        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    key_hash   text        NOT NULL UNIQUE,
    hint       text        NOT NULL,
    name       text        NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz NULL
);

CREATE INDEX api_keys_client_id_idx ON api_keys (client_id, created_at);

-- Who changed what, written in the transaction of the change itself. No
-- foreign keys: entries outlive the clients and numbers they name.
CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    target_type text        NOT NULL,
    target_id   text        NOT NULL,
    client_id   uuid        NULL,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_client_idx ON audit_log (client_id, id DESC);

-- Events written with the change that caused them and published afterwards
-- (transactional outbox): a committed change is never without its event.
CREATE TABLE event_outbox (
    id         bigserial   PRIMARY KEY,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
