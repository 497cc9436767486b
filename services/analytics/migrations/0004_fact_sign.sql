-- A changed fact is written as two rows in one insert: the previous version
-- again with sign -1 (it cancels that version wherever it was copied) and the
-- new version with sign +1. call_facts itself still keeps the highest
-- version (always a +1 row); the sign is for the projections fed from it.
-- Rows written before this column existed are +1.
ALTER TABLE ${database}.call_facts ADD COLUMN IF NOT EXISTS sign Int8 DEFAULT 1;
