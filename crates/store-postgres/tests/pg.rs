//! The PostgreSQL the tests run on: `TEST_DATABASE_URL`, a fresh database per test.

use tokio_postgres::NoTls;

/// Whether PostgreSQL tests can run: `TEST_DATABASE_URL` is set. Without it they are skipped
/// with a notice, except under `CI`, where a skipped database test would hide a broken setup.
pub fn available() -> bool {
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "TEST_DATABASE_URL is not set but CI is: the PostgreSQL tests must run in CI \
             (./scripts/test starts a throwaway PostgreSQL and sets it)"
        );
    }
    eprintln!("skipping a PostgreSQL test: TEST_DATABASE_URL is not set (./scripts/test sets it)");
    false
}

/// The server's URL with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

/// Creates an empty database `t_<uuid>` and returns its URL.
pub async fn fresh_database() -> String {
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    let (client, connection) = tokio_postgres::connect(&admin, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
    let task = tokio::spawn(connection);
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    with_database(&admin, &name)
}

#[test]
fn database_names_are_swapped_in_urls() {
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5/postgres", "t_1"),
        "postgres://u@127.0.0.1:5/t_1"
    );
    assert_eq!(
        with_database("postgres://u@h:5/x?sslmode=disable", "t_2"),
        "postgres://u@h:5/t_2?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://u@h:5", "t_3"),
        "postgres://u@h:5/t_3"
    );
}
