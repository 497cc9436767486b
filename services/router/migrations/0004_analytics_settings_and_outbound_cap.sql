-- What analytics needs of a client's settings (lead-quality thresholds; the
-- conversion value is already here), and the daily cap on outbound calls
-- that limits what a leaked key or a runaway script can cost in toll fraud.

-- The three thresholds are set together or not at all (NULL: analytics'
-- defaults), with short < long as analytics' buckets need.
ALTER TABLE clients
    ADD COLUMN lead_short_sec     integer NULL,
    ADD COLUMN lead_long_sec      integer NULL,
    ADD COLUMN lead_qualified_sec integer NULL,
    ADD COLUMN daily_outbound_cap integer NULL CHECK (daily_outbound_cap >= 0),
    ADD CONSTRAINT clients_lead_thresholds_check CHECK (
        (lead_short_sec IS NULL AND lead_long_sec IS NULL AND lead_qualified_sec IS NULL)
        OR (lead_short_sec >= 1 AND lead_long_sec > lead_short_sec AND lead_qualified_sec >= 0)
    );

-- Outbound calls placed per client and UTC day, counted before Twilio is asked.
CREATE TABLE outbound_call_counts (
    client_id uuid    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    day       date    NOT NULL,
    calls     integer NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (client_id, day)
);
