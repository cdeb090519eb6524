//! Migrations: `migrations/*.sql` embedded in order; `PRAGMA user_version` counts the applied
//! ones, each applied in a transaction of its own. A file keeps its name and number forever
//! (databases in use migrate by them); a schema change is a new file.

use rusqlite::Connection;
use session_buddy_store::StoreError;

use crate::Result;

pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_revoked_tokens.sql"),
    include_str!("../migrations/0003_analytics.sql"),
    include_str!("../migrations/0004_events_by_time.sql"),
    include_str!("../migrations/0005_search.sql"),
    include_str!("../migrations/0006_last_command.sql"),
    include_str!("../migrations/0007_search_behind_ingest.sql"),
    include_str!("../migrations/0008_recordings.sql"),
    include_str!("../migrations/0009_rollups.sql"),
    include_str!("../migrations/0010_active_by_component.sql"),
];

pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let target = MIGRATIONS.len() as i64;
    if current > target {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {current}, newer than this program's {target}; \
             upgrade session-buddy"
        ))
        .into());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version={}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}
