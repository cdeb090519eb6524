//! The rollup refresh beside ingest and autovacuum (`0006_rollup_claims.sql`): it claims hours
//! under a lock of the marks alone, so a vacuum of the big tables does not hold it back, a write
//! in progress that found its hour marked is never left out, and an unfinished claim is read
//! from the sessions and taken again.

use session_buddy_store::Store;
use session_buddy_store::analytics::{AnalyticsWindow, rollup_hour};
use session_buddy_store_postgres::PostgresStore;
use tokio_postgres::NoTls;

use crate::conformance::{at, event, ingest, start, uuid};
use crate::pg;

/// A store and a connection of its own to the same database.
async fn store_and_client() -> (PostgresStore, tokio_postgres::Client) {
    let url = pg::fresh_database().await;
    let store = PostgresStore::connect(&url, 4).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    (store, client)
}

/// One alpha session started at 10:20 on 2026-03-01; its id and rollup hour.
async fn one_session(store: &dyn Store) -> (String, i64) {
    let s = start("alpha", &uuid(1), "2026-03-01T10:20:00Z");
    ingest(store, std::slice::from_ref(&s), 1).await;
    let hour = rollup_hour(at("2026-03-01T10:20:00Z").timestamp_micros());
    (event(&s).session_id(), hour)
}

fn day() -> AnalyticsWindow {
    AnalyticsWindow {
        since: at("2026-03-01T00:00:00Z"),
        until: at("2026-03-02T00:00:00Z"),
        component: None,
        components: None,
    }
}

async fn alpha(store: &dyn Store) -> (u64, u64) {
    let s = store.analytics_summary(day()).await.unwrap();
    let a = s.iter().find(|s| s.component == "alpha").unwrap();
    (a.sessions, a.commands)
}

fn later() -> chrono::DateTime<chrono::Utc> {
    at("2027-01-01T00:00:00Z")
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_refresh_runs_while_the_tables_are_vacuumed() {
    if !pg::available() {
        return;
    }
    let (store, client) = store_and_client().await;
    one_session(&store).await;
    // What autovacuum holds on a table while it works on it.
    client
        .batch_execute("BEGIN; LOCK TABLE sessions, events IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .unwrap();
    assert_eq!(store.refresh_rollups(later()).await.unwrap(), 1);
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM rollup_hours").await, 1);
    assert_eq!(count(&client, "SELECT count(*) FROM rollup_dirty").await, 0);
    assert_eq!(alpha(&store).await, (1, 0));
}

#[tokio::test]
async fn a_write_in_progress_that_found_its_hour_marked_is_not_left_out() {
    if !pg::available() {
        return;
    }
    let (store, client) = store_and_client().await;
    let (id, _) = one_session(&store).await;
    // A write that has run its trigger (the hour was marked already, so it wrote no mark) and
    // has not committed.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(
            "UPDATE sessions SET command_count = 5 WHERE session_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    // The refresh waits for it, within its bound, and gives way.
    assert_eq!(store.refresh_rollups(later()).await.unwrap(), 0);
    client.batch_execute("COMMIT").await.unwrap();
    while store.refresh_rollups(later()).await.unwrap() > 0 {}
    assert_eq!(
        count(&client, "SELECT commands FROM rollup_hours").await,
        5,
        "the rollup has the write"
    );
    assert_eq!(alpha(&store).await, (1, 5));
}

#[tokio::test]
async fn an_unfinished_claim_is_read_from_the_sessions_and_taken_again() {
    if !pg::available() {
        return;
    }
    let (store, client) = store_and_client().await;
    let (_, hour) = one_session(&store).await;
    while store.refresh_rollups(later()).await.unwrap() > 0 {}
    // A refresh that claimed the hour and died before its new rows: they are wrong meanwhile.
    client
        .execute("UPDATE rollup_hours SET sessions = 99", &[])
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO rollup_building (component, hour) VALUES ('alpha', $1)",
            &[&hour],
        )
        .await
        .unwrap();
    assert_eq!(
        alpha(&store).await,
        (1, 0),
        "a claimed hour is read from the sessions"
    );
    assert_eq!(store.refresh_rollups(later()).await.unwrap(), 1);
    assert_eq!(count(&client, "SELECT sessions FROM rollup_hours").await, 1);
    assert_eq!(
        count(&client, "SELECT count(*) FROM rollup_building").await,
        0
    );
    assert_eq!(alpha(&store).await, (1, 0));
}
