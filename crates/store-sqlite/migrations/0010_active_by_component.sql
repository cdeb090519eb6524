-- The active sessions of each component (the `active_sessions` gauge, counted at start and
-- every 15 s): a partial index that holds the active sessions only, so the count walks them in
-- component order. Before it, the count read every active session through `sessions_by_status`
-- and sorted them: 10.5 s with 3 000 000 active sessions, 0.45 s with this index (covering:
-- SQLite only reads a partial index alone when the columns of the WHERE are in it).
CREATE INDEX IF NOT EXISTS sessions_active_by_component ON sessions (component, status)
    WHERE status = 'active';
