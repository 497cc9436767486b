-- When a deleted client's reports are purged (router's purgeAfter on its last settings event).
ALTER TABLE reporting.report_clients ADD COLUMN IF NOT EXISTS purge_after timestamptz;
