-- The tokens of erased callers (router's HMAC of the number): calls from them,
-- read again from Kafka, are stored under the token, never the number.
CREATE TABLE recordings.erased_callers (
    token     text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);
