-- Sessions: one row per start; times are microseconds since the Unix epoch, UTC.
CREATE TABLE sessions (
    session_id         TEXT PRIMARY KEY,
    session_type       TEXT NOT NULL,
    component          TEXT NOT NULL,
    shell_type         TEXT NOT NULL,
    component_version  TEXT,
    status             TEXT NOT NULL CHECK (status IN ('active', 'ended', 'abandoned')),
    username           TEXT NOT NULL,
    home               TEXT NOT NULL,
    hostname           TEXT NOT NULL,
    pid                INTEGER NOT NULL,
    platform           TEXT NOT NULL,
    runtime_version    TEXT,
    cwd                TEXT NOT NULL,
    started_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    last_seen_at       INTEGER NOT NULL,
    last_received_at   INTEGER NOT NULL,
    duration_us        INTEGER,
    command_count      INTEGER NOT NULL DEFAULT 0,
    error_count        INTEGER NOT NULL DEFAULT 0,
    exit_code          INTEGER,
    signal             TEXT,
    end_reason         TEXT,
    heartbeat_interval INTEGER,
    metadata           TEXT NOT NULL DEFAULT '{}',
    start_event_id     TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX sessions_by_start ON sessions (started_at, session_id);
CREATE INDEX sessions_by_component ON sessions (component, started_at);
CREATE INDEX sessions_by_status ON sessions (status, started_at);

-- Every event as validated and stored; pending ones (no start yet) too.
CREATE TABLE events (
    event_id    TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    seq         INTEGER,
    payload     TEXT NOT NULL
);

CREATE INDEX events_by_session ON events (session_id, ts);
-- A session has one end.
CREATE UNIQUE INDEX events_one_end ON events (session_id) WHERE event_type = 'session_end';
