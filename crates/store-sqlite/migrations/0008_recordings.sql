-- Terminal recordings (docs/recordings.md): a summary per recorded session and its chunks,
-- frames packed (JSON, deflated); the audit log of who read or erased what.
CREATE TABLE recordings (
    session_id   TEXT PRIMARY KEY,
    chunks       INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL,
    truncated    TEXT,
    started_at   INTEGER NOT NULL,
    cols         INTEGER NOT NULL,
    rows         INTEGER NOT NULL,
    last_at      INTEGER NOT NULL
);
CREATE INDEX recordings_by_last ON recordings (last_at);

CREATE TABLE recording_chunks (
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    cols       INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    data_bytes INTEGER NOT NULL,
    frames     BLOB    NOT NULL,
    truncated  TEXT,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    session_id TEXT,
    detail     TEXT
);
CREATE INDEX audit_by_session ON audit_log (session_id, id);
