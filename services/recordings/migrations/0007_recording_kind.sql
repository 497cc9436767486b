-- Whether a recording is of a call (<Dial record>, the REST API) or a
-- voicemail the caller left (<Record>, Twilio's RecordingSource=RecordVerb).
-- Rows written before are call recordings.
ALTER TABLE recordings.recordings ADD COLUMN kind text NOT NULL DEFAULT 'call'
    CHECK (kind IN ('call', 'voicemail'));
