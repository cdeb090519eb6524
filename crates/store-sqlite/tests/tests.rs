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
        assert_eq!(health.schema_version, 10);
    }

    #[tokio::test]
    async fn the_page_cache_budget_reaches_every_connection() {
        use session_buddy_store_sqlite::{DEFAULT_CACHE_MIB, PageCaches, SqliteOptions};
        let dir = tempfile::tempdir().unwrap();
        let caches = |cache_mib| {
            let path = db_path(&dir);
            async move {
                let options = SqliteOptions {
                    sync: SyncMode::Normal,
                    cache_mib,
                };
                let store = SqliteStore::open_with(&path, options).unwrap();
                let caches = store.page_caches().await.unwrap();
                store.close().await;
                caches
            }
        };
        let total = |c: PageCaches| c.writer_kib + c.reader_kib * c.readers as u64;
        // The default: the writer's 8 MiB, the rest shared by the readers.
        let default = caches(DEFAULT_CACHE_MIB).await;
        assert_eq!(default.writer_kib, 8192);
        assert_eq!(total(default), DEFAULT_CACHE_MIB * 1024);
        // A large budget goes to the readers; the writer keeps its 8 MiB.
        let large = caches(1024).await;
        assert_eq!(large.writer_kib, 8192);
        assert_eq!(total(large), 1024 * 1024);
        // A small one: the writer takes half.
        let small = caches(4).await;
        assert_eq!(small.writer_kib, 2048);
        assert_eq!(total(small), 4 * 1024);
    }

    /// `indexed_through` and the rows of `session_text`, read beside the store.
    fn search_index_state(dir: &TempDir) -> (i64, i64, i64) {
        let conn = rusqlite::Connection::open(db_path(dir)).unwrap();
        conn.query_row(
            "SELECT (SELECT indexed_through FROM search_state),
                    (SELECT coalesce(max(rowid), 0) FROM events),
                    (SELECT count(*) FROM session_text)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn the_search_index_follows_ingest_and_finds_alike_before_and_after() {
        use crate::conformance::{accept_all, all, listed, start, uuid};
        use session_buddy_store::{SearchPlan, SessionFilter};

        let backend = fresh().await;
        let mut ids = Vec::new();
        for i in 0..30u64 {
            let mut v = start("alpha", &uuid(0xd000 + i), "2026-04-01T10:00:00Z");
            v["user"]["username"] = serde_json::json!(format!("user-{i:02}"));
            ids.push(
                accept_all(backend.store(), &[v], 1)
                    .await
                    .remove(0)
                    .session_id,
            );
        }
        let lookup = |q: &str| SessionFilter {
            q: Some(q.into()),
            search_plan: Some(SearchPlan::Lookup),
            ..all()
        };
        // Found by the lookup while its sessions wait behind the index, and once indexed.
        let before = listed(backend.store(), lookup("user-1")).await;
        assert_eq!(before.len(), 10, "{before:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (through, end, rows) = search_index_state(&backend.dir);
            if through == end {
                assert_eq!(rows, 30);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not indexed: {through} < {end}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(listed(backend.store(), lookup("user-1")).await, before);
        let tail = &ids[7][ids[7].len() - 6..];
        assert_eq!(
            listed(backend.store(), lookup(tail)).await,
            [ids[7].as_str()]
        );

        // What a closing store had not indexed yet, it indexes as it closes.
        let v = start("beta", &uuid(0xe001), "2026-04-01T11:00:00Z");
        let late = accept_all(backend.store(), &[v], 1)
            .await
            .remove(0)
            .session_id;
        let backend = restart(backend).await;
        let (through, end, rows) = search_index_state(&backend.dir);
        assert_eq!((through, rows), (end, 31));
        assert_eq!(
            listed(backend.store(), lookup("beta")).await,
            [late.as_str()]
        );
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
             program's 10; upgrade session-buddy"
        );
    }
}
