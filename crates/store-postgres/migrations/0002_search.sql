-- Text search (`q` of list-sessions, GET /v1/sessions, MCP list_sessions): a case-insensitive
-- substring of a session's id, user, host or component, or of one of its command names, with
-- the same semantics as the SQLite backend (ILIKE, the text's `%`, `_` and `\` escaped).
--
-- Trigram indexes need the pg_trgm extension, shipped with PostgreSQL's contrib modules
-- (Debian's postgresql-15 package includes them). It is a trusted extension: the database's
-- owner may create it; otherwise a superuser runs `CREATE EXTENSION pg_trgm` in this
-- database once, and the migration goes on from there.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION
    WHEN undefined_file THEN
        RAISE EXCEPTION 'session-buddy needs the PostgreSQL extension pg_trgm (text search), and this server does not have it'
            USING HINT = 'Install PostgreSQL''s contrib modules on the database server (e.g. Debian/Ubuntu: the postgresql-<version> package ships them; RHEL: postgresql-contrib), then start session-buddy again.';
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'session-buddy needs the PostgreSQL extension pg_trgm (text search), and its database user may not create it'
            USING HINT = 'Have a superuser (or the database owner) run: CREATE EXTENSION pg_trgm; in this database, then start session-buddy again.';
END
$$;

-- GIN trigram indexes serve ILIKE '%text%' on each searched column.
CREATE INDEX sessions_search_id ON sessions USING gin (session_id gin_trgm_ops);
CREATE INDEX sessions_search_user ON sessions USING gin (username gin_trgm_ops);
CREATE INDEX sessions_search_host ON sessions USING gin (hostname gin_trgm_ops);
CREATE INDEX sessions_search_component ON sessions USING gin (component gin_trgm_ops);

-- Command names: the distinct (command, session) pairs, written at ingest with ON CONFLICT DO
-- NOTHING, and the (small) vocabulary of names a search scans before looking up the pairs.
CREATE TABLE command_names (
    name TEXT PRIMARY KEY
);
CREATE TABLE session_commands (
    command    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (command, session_id)
);
INSERT INTO session_commands (command, session_id)
    SELECT DISTINCT e.payload::jsonb ->> 'command', e.session_id
    FROM events e JOIN sessions s ON s.session_id = e.session_id
    WHERE e.event_type = 'command' AND e.payload::jsonb ->> 'command' IS NOT NULL
    ON CONFLICT DO NOTHING;
INSERT INTO command_names (name) SELECT DISTINCT command FROM session_commands
    ON CONFLICT DO NOTHING;
