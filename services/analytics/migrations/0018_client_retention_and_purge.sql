-- Per-client retention (days) and the moment a deleted client's data is purged
-- (services/analytics/privacy.py), from client.settings-changed.
ALTER TABLE ${database}.client_settings ADD COLUMN IF NOT EXISTS retentionDays Nullable(UInt32);
ALTER TABLE ${database}.client_settings ADD COLUMN IF NOT EXISTS purgeAfter Nullable(DateTime64(3, 'UTC'));
