-- What the recordings service knows: the calls it heard of (client, caller),
-- each client's recording settings, one row per RecordingSid, and its audit.

CREATE TABLE recordings.calls (
    call_sid    text PRIMARY KEY,
    client_id   text,
    caller      text,
    routed_at   timestamptz,
    received_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_client_caller ON recordings.calls (client_id, caller);

CREATE TABLE recordings.client_settings (
    client_id          text PRIMARY KEY,
    recording_enabled  boolean NOT NULL,
    retention_days     integer CHECK (retention_days IS NULL OR retention_days > 0),
    delete_from_twilio boolean NOT NULL,
    event_id           text NOT NULL,
    changed_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- RecordingSid is the key: a re-delivered event can never store twice.
CREATE TABLE recordings.recordings (
    recording_sid     text PRIMARY KEY,
    call_sid          text NOT NULL,
    client_id         text,
    status            text NOT NULL CHECK (status IN ('stored', 'absent', 'failed', 'deleted')),
    twilio_status     text NOT NULL,
    duration_sec      integer,
    channels          smallint,
    format            text CHECK (format IN ('wav', 'mp3')),
    bytes             bigint,
    sha256            text,
    storage_key       text,
    failure_reason    text,
    error_code        text,
    recorded_at       timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    twilio_deleted_at timestamptz,
    deleted_at        timestamptz,
    deleted_by        text,
    deletion_reason   text CHECK (deletion_reason IN ('retention', 'request', 'erasure')),
    CHECK (status <> 'stored' OR (storage_key IS NOT NULL AND bytes > 0 AND sha256 IS NOT NULL))
);
CREATE INDEX recordings_call ON recordings.recordings (call_sid);
CREATE INDEX recordings_client ON recordings.recordings (client_id, recorded_at);
CREATE INDEX recordings_stored_at ON recordings.recordings (recorded_at) WHERE status = 'stored';

CREATE TABLE recordings.audit (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    who       text NOT NULL,
    action    text NOT NULL,
    target    text NOT NULL,
    client_id text,
    detail    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_at ON recordings.audit (at);
CREATE INDEX audit_target ON recordings.audit (target);
