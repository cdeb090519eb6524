//! Recordings on PostgreSQL: the rules of the SQLite backend (one chunk per session and seq,
//! the cap, the summary row), with the summary rows locked while chunks are added so that two
//! servers cannot both pass the cap. A call locks the summary rows of all its sessions first,
//! in session-id order, so two calls naming the same sessions in other orders never deadlock
//! (and a transaction that still hits a deadlock or a serialization failure is tried again).

use std::collections::BTreeMap;

use deadpool_postgres::Object;
use session_buddy_store::recording::{over_cap_reason, refused_by_cap};
use session_buddy_store::{
    AuditEntry, ChunkOutcome, Erased, PackedChunk, Recording, RecordingInfo,
};
use tokio_postgres::Row;

use crate::error::retried;
use crate::{PgError, micros};

/// Stores chunks in one transaction, retried after a deadlock ([`retried`]).
pub(crate) async fn store_chunks(
    conn: &mut Object,
    chunks: &[PackedChunk],
    cap: u64,
) -> Result<Vec<ChunkOutcome>, PgError> {
    retried("recording", conn, chunks, |conn, chunks| {
        Box::pin(store_chunks_once(conn, chunks, cap))
    })
    .await
}

async fn store_chunks_once(
    conn: &mut Object,
    chunks: &[PackedChunk],
    cap: u64,
) -> Result<Vec<ChunkOutcome>, PgError> {
    let tx = conn.transaction().await?;
    let summary = tx
        .prepare_cached(
            "INSERT INTO recordings
               (session_id, chunks, bytes, stored_bytes, truncated, started_at, cols, rows, last_at)
             VALUES ($1, 0, 0, 0, NULL, $2, $3, $4, $5)
             ON CONFLICT (session_id) DO NOTHING",
        )
        .await?;
    let lock = tx
        .prepare_cached("SELECT bytes, truncated FROM recordings WHERE session_id = $1 FOR UPDATE")
        .await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO recording_chunks
               (session_id, seq, event_id, at, started_at, cols, rows, data_bytes, frames, truncated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (session_id, seq) DO NOTHING",
        )
        .await?;
    let grow = tx
        .prepare_cached(
            "UPDATE recordings SET chunks = chunks + 1, bytes = bytes + $2,
                    stored_bytes = stored_bytes + $3, truncated = coalesce(truncated, $4),
                    last_at = greatest(last_at, $5)
             WHERE session_id = $1",
        )
        .await?;
    let truncate = tx
        .prepare_cached(
            "UPDATE recordings SET truncated = coalesce(truncated, $2) WHERE session_id = $1",
        )
        .await?;
    let exists = tx
        .prepare_cached("SELECT 1 FROM recording_chunks WHERE session_id = $1 AND seq = $2")
        .await?;
    // Every session's summary row, created when new (from its first chunk in the call) and
    // locked, in session-id order: the one lock order of every call.
    let mut firsts: BTreeMap<&str, &PackedChunk> = BTreeMap::new();
    for c in chunks {
        firsts.entry(c.session_id.as_str()).or_insert(c);
    }
    for (id, c) in &firsts {
        tx.execute(&summary, &[id, &c.started_us, &c.cols, &c.rows, &c.at_us])
            .await?;
        tx.query_one(&lock, &[id]).await?;
    }
    let mut out = Vec::with_capacity(chunks.len());
    for c in chunks {
        // Already locked by this transaction: reads the bytes so far, its own chunks included.
        let row = tx.query_one(&lock, &[&c.session_id]).await?;
        let (bytes, truncated): (i64, Option<String>) = (row.get(0), row.get(1));
        if tx
            .query_opt(&exists, &[&c.session_id, &c.seq])
            .await?
            .is_some()
        {
            out.push(ChunkOutcome::Duplicate);
            continue;
        }
        if refused_by_cap(bytes, truncated.as_deref(), c.data_bytes, cap) {
            tx.execute(&truncate, &[&c.session_id, &over_cap_reason(cap)])
                .await?;
            out.push(ChunkOutcome::OverCap);
            continue;
        }
        tx.execute(
            &insert,
            &[
                &c.session_id,
                &c.seq,
                &c.event_id,
                &c.at_us,
                &c.started_us,
                &c.cols,
                &c.rows,
                &c.data_bytes,
                &c.frames,
                &c.truncated,
            ],
        )
        .await?;
        tx.execute(
            &grow,
            &[
                &c.session_id,
                &c.data_bytes,
                &(c.frames.len() as i64),
                &c.truncated,
                &c.at_us,
            ],
        )
        .await?;
        out.push(ChunkOutcome::Stored);
    }
    tx.commit().await?;
    Ok(out)
}

const INFO_COLUMNS: &str =
    "session_id, chunks, bytes, stored_bytes, truncated, started_at, cols, rows, last_at";

fn info_from_row(r: &Row) -> RecordingInfo {
    RecordingInfo {
        session_id: r.get(0),
        chunks: r.get::<_, i64>(1).max(0) as u64,
        bytes: r.get::<_, i64>(2).max(0) as u64,
        stored_bytes: r.get::<_, i64>(3).max(0) as u64,
        truncated: r.get(4),
        started_at: micros(r.get(5)),
        cols: u16::try_from(r.get::<_, i64>(6)).unwrap_or(80),
        rows: u16::try_from(r.get::<_, i64>(7)).unwrap_or(24),
        last_at: micros(r.get(8)),
    }
}

pub(crate) async fn infos(conn: &Object, ids: &[String]) -> Result<Vec<RecordingInfo>, PgError> {
    let stmt = conn
        .prepare_cached(&format!(
            "SELECT {INFO_COLUMNS} FROM recordings WHERE session_id = ANY($1)"
        ))
        .await?;
    Ok(conn
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(info_from_row)
        .collect())
}

pub(crate) async fn recording(
    conn: &Object,
    session_id: &str,
) -> Result<Option<Recording>, PgError> {
    let Some(info) = infos(conn, &[session_id.to_string()]).await?.pop() else {
        return Ok(None);
    };
    let stmt = conn
        .prepare_cached(
            "SELECT session_id, seq, event_id, at, started_at, cols, rows, data_bytes, frames,
                    truncated
             FROM recording_chunks WHERE session_id = $1 ORDER BY seq",
        )
        .await?;
    let chunks = conn
        .query(&stmt, &[&session_id])
        .await?
        .iter()
        .map(|r| PackedChunk {
            session_id: r.get(0),
            seq: r.get(1),
            event_id: r.get(2),
            at_us: r.get(3),
            started_us: r.get(4),
            cols: r.get(5),
            rows: r.get(6),
            data_bytes: r.get(7),
            frames: r.get(8),
            truncated: r.get(9),
        })
        .collect();
    Ok(Some(Recording { info, chunks }))
}

pub(crate) async fn recorded_sessions(
    conn: &Object,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, PgError> {
    let stmt = conn
        .prepare_cached(
            "SELECT session_id FROM recordings WHERE session_id > $1 ORDER BY session_id LIMIT $2",
        )
        .await?;
    Ok(conn
        .query(&stmt, &[&after.unwrap_or(""), &limit])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub(crate) async fn prune_recordings(
    conn: &mut Object,
    before_us: i64,
    batch: i64,
) -> Result<u64, PgError> {
    let tx = conn.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "WITH old AS (SELECT session_id FROM recordings WHERE last_at < $1
                          LIMIT $2 FOR UPDATE SKIP LOCKED),
                  chunks AS (DELETE FROM recording_chunks k USING old
                             WHERE k.session_id = old.session_id)
             DELETE FROM recordings r USING old WHERE r.session_id = old.session_id",
        )
        .await?;
    let n = tx.execute(&stmt, &[&before_us, &batch]).await?;
    tx.commit().await?;
    Ok(n)
}

pub(crate) async fn erase(
    conn: &mut Object,
    session_id: &str,
    audit: &AuditEntry,
) -> Result<Erased, PgError> {
    let tx = conn.transaction().await?;
    let events = tx
        .execute("DELETE FROM events WHERE session_id = $1", &[&session_id])
        .await?;
    let session = tx
        .execute("DELETE FROM sessions WHERE session_id = $1", &[&session_id])
        .await?
        > 0;
    tx.execute(
        "DELETE FROM session_commands WHERE session_id = $1",
        &[&session_id],
    )
    .await?;
    let chunks = tx
        .execute(
            "DELETE FROM recording_chunks WHERE session_id = $1",
            &[&session_id],
        )
        .await?;
    tx.execute(
        "DELETE FROM recordings WHERE session_id = $1",
        &[&session_id],
    )
    .await?;
    insert_audit(&tx, audit).await?;
    tx.commit().await?;
    Ok(Erased {
        session,
        events,
        chunks,
    })
}

async fn insert_audit(
    c: &impl deadpool_postgres::GenericClient,
    e: &AuditEntry,
) -> Result<(), PgError> {
    c.execute(
        "INSERT INTO audit_log (at, actor, action, session_id, detail) VALUES ($1, $2, $3, $4, $5)",
        &[
            &e.at.timestamp_micros(),
            &e.actor,
            &e.action,
            &e.session_id,
            &e.detail,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn record_audit(conn: &Object, e: &AuditEntry) -> Result<(), PgError> {
    insert_audit(conn, e).await
}

pub(crate) async fn audit_log(
    conn: &Object,
    session_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>, PgError> {
    let stmt = conn
        .prepare_cached(
            "SELECT id, at, actor, action, session_id, detail FROM audit_log
             WHERE ($1::text IS NULL OR session_id = $1) ORDER BY id DESC LIMIT $2",
        )
        .await?;
    Ok(conn
        .query(&stmt, &[&session_id, &limit])
        .await?
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: micros(r.get(1)),
            actor: r.get(2),
            action: r.get(3),
            session_id: r.get(4),
            detail: r.get(5),
        })
        .collect())
}
