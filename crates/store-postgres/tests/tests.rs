#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The PostgreSQL backend's integration tests, one binary: the shared conformance suite, then
//! what only a shared database has (several servers on one database).
//!
//! They need a PostgreSQL server: `TEST_DATABASE_URL` (`./scripts/test` starts a throwaway
//! cluster and sets it). Each test gets a database of its own. Without the variable they are
//! skipped with a notice, except under `CI`, where they fail.

#[path = "../../store/tests/conformance/mod.rs"]
mod conformance;
mod pg;
mod rollups;
mod scale_out;

mod postgres {
    use session_buddy_store::Store;
    use session_buddy_store_postgres::PostgresStore;

    use crate::pg;

    /// A PostgreSQL store on a database of its own.
    pub struct Backend {
        url: String,
        store: PostgresStore,
    }

    impl Backend {
        pub fn store(&self) -> &dyn Store {
            &self.store
        }
    }

    async fn fresh() -> Backend {
        let url = pg::fresh_database().await;
        let store = PostgresStore::connect(&url, 4).await.unwrap();
        Backend { url, store }
    }

    /// Closes the store, drops it and connects to the same database again.
    async fn restart(backend: Backend) -> Backend {
        let Backend { url, store } = backend;
        store.close().await;
        drop(store);
        let store = PostgresStore::connect(&url, 4).await.unwrap();
        Backend { url, store }
    }

    crate::conformance::conformance_suite!(fresh, restart, available = pg::available);

    #[tokio::test]
    async fn health_names_postgres_and_hides_the_password() {
        if !pg::available() {
            return;
        }
        let backend = fresh().await;
        let health = backend.store().health().await.unwrap();
        assert_eq!(health.backend, "postgres");
        assert!(health.location.starts_with("postgres://"), "{health:?}");
        assert_eq!(health.schema_version, 6);
    }

    #[tokio::test]
    async fn migrations_run_once_when_servers_start_together() {
        if !pg::available() {
            return;
        }
        let url = pg::fresh_database().await;
        let stores = futures_join(&url).await;
        for s in &stores {
            assert_eq!(s.health().await.unwrap().schema_version, 6);
        }
    }

    async fn futures_join(url: &str) -> Vec<PostgresStore> {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let url = url.to_string();
                tokio::spawn(async move { PostgresStore::connect(&url, 2).await.unwrap() })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }
}
