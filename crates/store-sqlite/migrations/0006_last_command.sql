-- The session record's `last_command`: the name of the latest command stored for the session,
-- kept at ingest (the live view and the stream show it without reading the events).
ALTER TABLE sessions ADD COLUMN last_command TEXT;

UPDATE sessions SET last_command = (
    SELECT json_extract(e.payload, '$.command') FROM events e
    WHERE e.session_id = sessions.session_id AND e.event_type = 'command'
    ORDER BY e.ts DESC, e.rowid DESC LIMIT 1)
WHERE command_count > 0;
