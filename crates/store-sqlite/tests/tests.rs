#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SQLite backend's integration tests, one binary: the shared conformance suite (written
//! against the `Store` trait in `session-buddy-store`), then what only SQLite has.

#[path = "../../store/tests/conformance/mod.rs"]
mod conformance;

mod sqlite {
    use std::path::PathBuf;

    use session_buddy_store::Store;
    use session_buddy_store_sqlite::{SqliteStore, SyncMode};
    use tempfile::TempDir;

    /// A SQLite store in a temporary directory of its own.
    struct Backend {
        dir: TempDir,
        store: SqliteStore,
    }

    impl Backend {
        fn store(&self) -> &dyn Store {
            &self.store
        }
    }

    fn db_path(dir: &TempDir) -> PathBuf {
        dir.path().join("sessions.db")
    }

    async fn fresh() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&db_path(&dir), SyncMode::Normal).unwrap();
        Backend { dir, store }
    }

    /// Closes the store, drops it and opens the same file again.
    async fn restart(backend: Backend) -> Backend {
        let Backend { dir, store } = backend;
        store.close().await;
        drop(store);
        let store = SqliteStore::open(&db_path(&dir), SyncMode::Normal).unwrap();
        Backend { dir, store }
    }

    crate::conformance::conformance_suite!(fresh, restart);

    #[tokio::test]
    async fn health_names_sqlite_and_its_file() {
        let backend = fresh().await;
        let health = backend.store().health().await.unwrap();
        assert_eq!(health.backend, "sqlite");
        assert_eq!(health.location, db_path(&backend.dir).display().to_string());
        // Every migration in `migrations/` applied, counted by `PRAGMA user_version`.
        assert_eq!(health.schema_version, 6);
    }

    #[tokio::test]
    async fn a_database_of_a_newer_program_is_refused_with_what_to_do() {
        let backend = fresh().await;
        let Backend { dir, store } = backend;
        store.close().await;
        drop(store);
        let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(conn);
        let err = SqliteStore::open(&db_path(&dir), SyncMode::Normal)
            .err()
            .expect("a newer schema is refused");
        assert_eq!(
            err.to_string(),
            "stored data is corrupt: the database has schema version 99, newer than this \
             program's 6; upgrade session-buddy"
        );
    }
}
