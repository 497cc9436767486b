-- A client's notification settings (notifications.py): missed-call alerts by
-- email, SMS and webhook, quiet hours, weekly and monthly reports. No row:
-- alerts and reports off. `settings` is what GET shows; the webhook's signing
-- secret sits apart, since only the PUT that made it and the
-- client.settings-changed event (for the reporting service) carry it.
CREATE TABLE IF NOT EXISTS client_notifications (
    client_id uuid PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    settings jsonb NOT NULL,
    webhook_secret text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
