-- How many days reporting keeps a client's alerts, deliveries and text-back calls (router's
-- retentionDays on its client.settings-changed; null: REPORTING_RETENTION_DAYS alone).
ALTER TABLE reporting.report_clients ADD COLUMN IF NOT EXISTS retention_days integer;

-- Housekeeping finds old rows by their time.
CREATE INDEX IF NOT EXISTS alerts_by_client ON reporting.alerts (client_id, created_at);
CREATE INDEX IF NOT EXISTS deliveries_by_client ON reporting.deliveries (client_id, created_at);
CREATE INDEX IF NOT EXISTS textback_calls_by_client
    ON reporting.textback_calls (client_id, decided_at);
