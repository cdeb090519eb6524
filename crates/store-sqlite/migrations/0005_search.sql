-- Text search (`q` of list-sessions, GET /v1/sessions, MCP list_sessions): a case-insensitive
-- substring of a session's id, user, host or component, or of one of its command names.
--
-- session_text: an FTS5 table with the trigram tokenizer (substring matching, case folded) over
-- the session's id, user and host (the id begins with the component, so a component's
-- matches are among the id's); one row per session, written at the session's start and
-- deleted with it (found by its id, itself indexed). `sessions` has no rowid to point to, so
-- the table keeps its own copy of the three values (a few dozen bytes per session); no
-- column sizes (`columnsize=0`: no ranking here, one write less per session).
CREATE VIRTUAL TABLE session_text USING fts5(
    session_id, username, hostname,
    tokenize = 'trigram', columnsize = 0
);
INSERT INTO session_text (session_id, username, hostname)
    SELECT session_id, username, hostname FROM sessions;

-- Command names: the distinct (command, session) pairs, written at ingest with INSERT OR
-- IGNORE, and the (small) vocabulary of names a search scans before looking up the pairs.
CREATE TABLE command_names (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE session_commands (
    command    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (command, session_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO session_commands (command, session_id)
    SELECT json_extract(e.payload, '$.command'), e.session_id
    FROM events e JOIN sessions s ON s.session_id = e.session_id
    WHERE e.event_type = 'command' AND json_extract(e.payload, '$.command') IS NOT NULL;
INSERT OR IGNORE INTO command_names (name) SELECT DISTINCT command FROM session_commands;
