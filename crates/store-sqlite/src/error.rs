//! What can go wrong in SQLite, carried into [`StoreError`] at the trait's edge.

use rusqlite::ffi;
use session_buddy_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The disk under the database has no room (how that was found).
    #[error("{0}")]
    NoSpace(String),
}

impl SqliteError {
    /// The one rule for a write that failed for want of disk space: `SQLITE_FULL` (SQLite's
    /// answer to `ENOSPC`, or a database at its page limit), `SQLITE_IOERR_SHMSIZE` (the WAL
    /// index could not grow: on Unix, its new page could not be written), and
    /// [`SqliteError::NoSpace`].
    pub(crate) fn is_disk_full(&self) -> bool {
        match self {
            SqliteError::NoSpace(_) => true,
            SqliteError::Sql(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
                    || e.extended_code == ffi::SQLITE_IOERR_SHMSIZE
            }
            _ => false,
        }
    }
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        match e {
            SqliteError::Store(e) => e,
            full if full.is_disk_full() => StoreError::Full(format!(
                "the disk holding the SQLite database has no space left ({full}); free space \
                 on that disk and writes resume by themselves"
            )),
            sql => StoreError::Backend(Box::new(sql)),
        }
    }
}
