//! What can go wrong in SQLite, carried into [`StoreError`] at the trait's edge.

use session_buddy_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        match e {
            SqliteError::Store(e) => e,
            sql => StoreError::Backend(Box::new(sql)),
        }
    }
}
