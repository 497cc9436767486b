-- Erasure requests of callers (privacy.py), keyed by the number's token, never the number.
CREATE TABLE caller_erasures (
    token        text        PRIMARY KEY,
    requested_by text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    stores       jsonb       NOT NULL DEFAULT '{}'::jsonb
);
