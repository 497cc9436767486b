-- A number's call flow (flows.py): business hours, ring targets, whisper,
-- screening, after hours, voicemail, text-back. NULL: routed as before flows
-- existed. It lives on the assignment, so a released number drops its flow.
ALTER TABLE phone_numbers ADD COLUMN flow jsonb;
