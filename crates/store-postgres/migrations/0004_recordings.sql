-- Terminal recordings (docs/recordings.md): a summary per recorded session and its chunks,
-- frames packed (JSON, deflated); the audit log of who read or erased what.
CREATE TABLE recordings (
    session_id   TEXT PRIMARY KEY,
    chunks       BIGINT NOT NULL,
    bytes        BIGINT NOT NULL,
    stored_bytes BIGINT NOT NULL,
    truncated    TEXT,
    started_at   BIGINT NOT NULL,
    cols         BIGINT NOT NULL,
    rows         BIGINT NOT NULL,
    last_at      BIGINT NOT NULL
);
CREATE INDEX recordings_by_last ON recordings (last_at);

CREATE TABLE recording_chunks (
    session_id TEXT    NOT NULL,
    seq        BIGINT NOT NULL,
    event_id   TEXT    NOT NULL,
    at         BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    cols       BIGINT NOT NULL,
    rows       BIGINT NOT NULL,
    data_bytes BIGINT NOT NULL,
    frames     BYTEA   NOT NULL,
    truncated  TEXT,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    session_id TEXT,
    detail     TEXT
);
CREATE INDEX audit_by_session ON audit_log (session_id, id);
