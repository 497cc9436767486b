-- Missed-call alerts: one row per missed call (published on the alert-events topic when due),
-- and one row per delivery under its idempotency key (call, channel, recipient).
CREATE SCHEMA IF NOT EXISTS reporting;

CREATE TABLE IF NOT EXISTS reporting.alerts (
    call_sid text PRIMARY KEY,
    client_id text NOT NULL,
    -- the alert.missed-call event as it is (or will be) published
    event jsonb NOT NULL,
    -- published no earlier than this: later while a voicemail or its link may still come
    due_at timestamptz NOT NULL,
    published_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_waiting ON reporting.alerts (due_at) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS reporting.deliveries (
    call_sid text NOT NULL,
    channel text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    recipient text NOT NULL,
    client_id text NOT NULL,
    alert_id text NOT NULL,
    -- the alert event's JSON (what every channel's message is made from)
    alert jsonb NOT NULL,
    -- the webhook's signing secret at the time of the alert (null for other channels)
    secret text,
    -- pending: waiting to be sent; sending: claimed by a dispatcher until claimed_until;
    -- delivered: the recipient's side took it; dead: given up (see last_error)
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
    -- the end of the client's quiet hours, or the alert's time
    not_before timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    claimed_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    last_attempt_at timestamptz,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_sid, channel, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON reporting.deliveries (next_attempt_at)
    WHERE status IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS deliveries_dead ON reporting.deliveries (client_id, created_at)
    WHERE status = 'dead';
