-- The one way to read call facts: the latest version of each call. Every
-- query (API, summary, Grafana) goes through this view so none double counts.
-- WHERE conditions on it are applied after FINAL has merged the versions.
CREATE VIEW IF NOT EXISTS ${database}.calls AS
SELECT * FROM ${database}.call_facts FINAL;
