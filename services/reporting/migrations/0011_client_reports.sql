-- Client reports: who wants which (from router's client.settings-changed) and every report,
-- one per client and period (claimed first, then built, stored and sent).
CREATE SCHEMA IF NOT EXISTS reporting;

CREATE TABLE IF NOT EXISTS reporting.report_clients (
    client_id text PRIMARY KEY,
    name text,
    timezone text NOT NULL DEFAULT 'UTC',
    weekly boolean NOT NULL DEFAULT false,
    monthly boolean NOT NULL DEFAULT false,
    emails text[] NOT NULL DEFAULT '{}',
    -- Since when the client's reports are on: periods due before it are not built.
    reports_since timestamptz,
    deleted boolean NOT NULL DEFAULT false,
    occurred_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reporting.reports (
    id uuid PRIMARY KEY,
    client_id text NOT NULL,
    period text NOT NULL CHECK (period IN ('week', 'month')),
    period_first date NOT NULL,
    period_last date NOT NULL,
    timezone text NOT NULL,
    origin text NOT NULL CHECK (origin IN ('schedule', 'request')),
    status text NOT NULL CHECK (status IN ('pending', 'building', 'built', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    claimed_by text,
    claimed_until timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    figures jsonb,
    pdf_key text,
    html_key text,
    recipients text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    built_at timestamptz,
    sent_at timestamptz,
    UNIQUE (client_id, period, period_first)
);

CREATE INDEX IF NOT EXISTS reports_work ON reporting.reports (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS reports_by_client ON reporting.reports (client_id, period_first DESC);
