//! Connections: the writer's (WAL, the sync mode), the readers' (query only), the checkpointer
//! that copies the WAL back off the writer's thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use session_buddy_store::StoreError;

use crate::{Result, SyncMode};

/// The writer's page cache at most, KiB. Small on purpose: every commit truncates SQLite's page
/// cache to the database's size, and a B-tree page split renumbers a page through the
/// pending-byte page number (262 145), which leaves that key as the cache's highest, so the
/// truncation scans the whole cache hash table at every commit that split a page. With 64 MiB
/// that scan was 7–11 % of the server's CPU under single-event ingest; 8 MiB gave 22 % more
/// single-event ingest over 300 000 stored sessions (BENCHMARKS.md, "The writer's page
/// cache"). The OS page cache still holds the file; the readers have caches of their own.
const WRITER_CACHE_KIB: u64 = 8192;

/// The page caches of one store's connections, KiB, cut from one budget
/// ([`crate::SqliteOptions::cache_mib`]): the writer takes up to [`WRITER_CACHE_KIB`] and at
/// most half, each of the [`crate::READ_POOL`] readers an equal share of the rest. A reader's
/// cache only lives as long as the database does not change (WAL mode resets it when another
/// connection committed), so under ingest it serves one query at a time, and small shares cost
/// little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caches {
    pub writer_kib: u64,
    pub reader_kib: u64,
}

impl Caches {
    pub(crate) fn split(budget_mib: u64) -> Self {
        let budget = budget_mib.max(1) * 1024;
        let writer_kib = WRITER_CACHE_KIB.min(budget / 2);
        let reader_kib = (budget - writer_kib) / crate::READ_POOL as u64;
        Self {
            writer_kib,
            reader_kib,
        }
    }
}

pub(crate) fn open_writer(path: &Path, sync: SyncMode, cache_kib: u64) -> Result<Connection> {
    // One thread owns this connection: SQLite's per-connection mutex is not needed.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source: Box::new(source),
    })?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous={};
         PRAGMA busy_timeout=5000;
         PRAGMA temp_store=MEMORY;
         PRAGMA cache_size=-{cache_kib};
         PRAGMA wal_autocheckpoint=0;
         PRAGMA journal_size_limit=67108864;",
        match sync {
            SyncMode::Normal => "NORMAL",
            SyncMode::Full => "FULL",
        }
    ))?;
    Ok(conn)
}

pub(crate) fn open_reader(path: &Path, cache_kib: u64) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source: Box::new(source),
    })?;
    conn.execute_batch(&format!(
        "PRAGMA query_only=1; PRAGMA busy_timeout=5000; PRAGMA cache_size=-{cache_kib};"
    ))?;
    Ok(conn)
}

/// Copies the WAL back into the database off the writer's thread (the writer's automatic
/// checkpoints are off), so commits never wait for a checkpoint. PASSIVE never blocks the
/// writer; when the WAL grows past [`WAL_RESTART_BYTES`] a RESTART lets it wrap around.
pub(crate) fn checkpoint_loop(path: &Path, stop: &AtomicBool) {
    let Ok(conn) = Connection::open(path) else {
        tracing::error!(path = %path.display(), "cannot open the checkpoint connection; the WAL will grow until restart");
        return;
    };
    let _ = conn.execute_batch("PRAGMA busy_timeout=1000;");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_RESTART_BYTES);
        let mode = if big { "RESTART" } else { "PASSIVE" };
        if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// WAL size beyond which the checkpointer forces the log to wrap around.
const WAL_RESTART_BYTES: u64 = 256 * 1024 * 1024;
