-- Sessions: one row per start; times are microseconds since the Unix epoch, UTC (the same
-- representation as the SQLite backend, so both answer alike to the microsecond).
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
    pid                BIGINT NOT NULL,
    platform           TEXT NOT NULL,
    runtime_version    TEXT,
    cwd                TEXT NOT NULL,
    started_at         BIGINT NOT NULL,
    ended_at           BIGINT,
    last_seen_at       BIGINT NOT NULL,
    last_received_at   BIGINT NOT NULL,
    duration_us        BIGINT,
    command_count      BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    exit_code          BIGINT,
    signal             TEXT,
    end_reason         TEXT,
    heartbeat_interval BIGINT,
    metadata           TEXT NOT NULL DEFAULT '{}',
    start_event_id     TEXT NOT NULL
);

CREATE INDEX sessions_by_start ON sessions (started_at, session_id);
CREATE INDEX sessions_by_component ON sessions (component, started_at);
CREATE INDEX sessions_by_status ON sessions (status, started_at);
-- The reaper's scan: only active sessions, by silence.
CREATE INDEX sessions_active_by_silence ON sessions (last_received_at) WHERE status = 'active';
-- Analytics aggregate one component's sessions in a start-time range.
CREATE INDEX sessions_analytics ON sessions (
    component, started_at, status, duration_us, error_count, command_count, exit_code
);

-- Every event as validated and stored (canonical JSON text, compared byte for byte for
-- deduplication); pending ones (no start yet) too. `id` is the insertion order.
CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    event_id    TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    ts          BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    seq         BIGINT,
    payload     TEXT NOT NULL
);

CREATE INDEX events_by_session ON events (session_id, ts, id);
CREATE INDEX events_by_insertion ON events (id);
CREATE INDEX events_by_time ON events (ts, event_id);
-- A session has one end.
CREATE UNIQUE INDEX events_one_end ON events (session_id) WHERE event_type = 'session_end';

-- Revoked tokens: a row can go once its token has expired (`expires_at`; NULL: unknown, kept).
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT
);
