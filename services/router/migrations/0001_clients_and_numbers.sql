-- Clients of the business and the Twilio numbers assigned to them.
-- A number belongs to one client at a time: the phone number is the key.

CREATE TABLE clients (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    forward_to  text        NULL,
    timezone    text        NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE phone_numbers (
    phone_number         text        PRIMARY KEY,
    client_id            uuid        NOT NULL REFERENCES clients (id),
    forward_to           text        NOT NULL,
    record               boolean     NOT NULL DEFAULT true,
    recording_disclaimer text        NULL,
    campaign             text        NULL,
    assigned_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX phone_numbers_client_id_idx ON phone_numbers (client_id, assigned_at);
