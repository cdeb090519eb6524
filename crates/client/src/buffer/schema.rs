//! The buffer's file: its schema (`PRAGMA user_version` counts the versions, each script
//! idempotent) and opening it in WAL mode while other processes of the host may do the same.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    dead_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    events INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, events, bytes) VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS queue_ins AFTER INSERT ON queue BEGIN
    UPDATE totals SET events = events + 1, bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS queue_del AFTER DELETE ON queue BEGIN
    UPDATE totals SET events = events - 1, bytes = bytes - OLD.bytes WHERE id = 1;
END;
PRAGMA user_version = 1;
"#;

/// Version 2: how far each session journal has been moved into the queue.
pub(super) const SCHEMA_2: &str = r#"
CREATE TABLE IF NOT EXISTS journal_offsets (
    name    TEXT PRIMARY KEY,
    offset  INTEGER NOT NULL
);
PRAGMA user_version = 2;
"#;

/// Version 3: recording chunks (`output` events) have their own quota: `totals` counts the
/// other events only, `recording_totals` the chunks, so neither bound ever evicts the other.
pub(super) const SCHEMA_3: &str = r#"
DROP TRIGGER IF EXISTS queue_ins;
DROP TRIGGER IF EXISTS queue_del;
CREATE TRIGGER queue_ins AFTER INSERT ON queue WHEN NEW.event_type <> 'output' BEGIN
    UPDATE totals SET events = events + 1, bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER queue_del AFTER DELETE ON queue WHEN OLD.event_type <> 'output' BEGIN
    UPDATE totals SET events = events - 1, bytes = bytes - OLD.bytes WHERE id = 1;
END;
CREATE TABLE IF NOT EXISTS recording_totals (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    chunks INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
);
INSERT OR IGNORE INTO recording_totals (id, chunks, bytes) VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS recording_ins AFTER INSERT ON queue WHEN NEW.event_type = 'output' BEGIN
    UPDATE recording_totals SET chunks = chunks + 1, bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS recording_del AFTER DELETE ON queue WHEN OLD.event_type = 'output' BEGIN
    UPDATE recording_totals SET chunks = chunks - 1, bytes = bytes - OLD.bytes WHERE id = 1;
END;
CREATE INDEX IF NOT EXISTS queue_by_type ON queue (event_type, id);
PRAGMA user_version = 3;
"#;

/// How long [`Buffer::open`] keeps trying while another opener holds the new file.
pub(super) const OPEN_PATIENCE: Duration = Duration::from_secs(5);

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub(super) fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 3 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have upgraded it meanwhile: the scripts are idempotent.
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < 2 {
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(SCHEMA_2)?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_3)?;
        }
        tx.commit()?;
    }
    Ok(conn)
}
