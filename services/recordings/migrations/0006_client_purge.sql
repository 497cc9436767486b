-- A deleted client's recordings are purged once purge_after has passed (deletion.py).
ALTER TABLE recordings.client_settings ADD COLUMN purge_after timestamptz;

ALTER TABLE recordings.recordings DROP CONSTRAINT recordings_deletion_reason_check;
ALTER TABLE recordings.recordings ADD CONSTRAINT recordings_deletion_reason_check
    CHECK (deletion_reason IN ('retention', 'request', 'erasure', 'purge'));
