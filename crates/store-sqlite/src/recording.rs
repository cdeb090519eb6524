//! Recordings on SQLite: chunks stored once per (session, seq) under the session's cap, read
//! back in order; retention, erasure and the audit log.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use session_buddy_store::recording::{over_cap_reason, refused_by_cap};
use session_buddy_store::{
    AuditEntry, ChunkOutcome, Erased, PackedChunk, Recording, RecordingInfo,
};

use crate::Result;
use crate::read::micros;

pub(crate) fn store_chunks(
    conn: &mut Connection,
    chunks: &[PackedChunk],
    cap: u64,
) -> Result<Vec<ChunkOutcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(chunks.len());
    for c in chunks {
        let exists = tx
            .prepare_cached("SELECT 1 FROM recording_chunks WHERE session_id = ?1 AND seq = ?2")?
            .query_row(params![c.session_id, c.seq], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            out.push(ChunkOutcome::Duplicate);
            continue;
        }
        let (bytes, truncated): (i64, Option<String>) = tx
            .prepare_cached("SELECT bytes, truncated FROM recordings WHERE session_id = ?1")?
            .query_row([&c.session_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, None));
        if refused_by_cap(bytes, truncated.as_deref(), c.data_bytes, cap) {
            tx.prepare_cached(
                "INSERT INTO recordings
                   (session_id, chunks, bytes, stored_bytes, truncated, started_at, cols, rows, last_at)
                 VALUES (?1, 0, 0, 0, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (session_id) DO UPDATE SET
                   truncated = coalesce(truncated, excluded.truncated)",
            )?
            .execute(params![
                c.session_id,
                over_cap_reason(cap),
                c.started_us,
                c.cols,
                c.rows,
                c.at_us
            ])?;
            out.push(ChunkOutcome::OverCap);
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO recording_chunks
               (session_id, seq, event_id, at, started_at, cols, rows, data_bytes, frames, truncated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            c.session_id,
            c.seq,
            c.event_id,
            c.at_us,
            c.started_us,
            c.cols,
            c.rows,
            c.data_bytes,
            c.frames,
            c.truncated
        ])?;
        tx.prepare_cached(
            "INSERT INTO recordings
               (session_id, chunks, bytes, stored_bytes, truncated, started_at, cols, rows, last_at)
             VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (session_id) DO UPDATE SET
               chunks = chunks + 1,
               bytes = bytes + excluded.bytes,
               stored_bytes = stored_bytes + excluded.stored_bytes,
               truncated = coalesce(truncated, excluded.truncated),
               last_at = max(last_at, excluded.last_at)",
        )?
        .execute(params![
            c.session_id,
            c.data_bytes,
            c.frames.len() as i64,
            c.truncated,
            c.started_us,
            c.cols,
            c.rows,
            c.at_us
        ])?;
        out.push(ChunkOutcome::Stored);
    }
    tx.commit()?;
    Ok(out)
}

const INFO_COLUMNS: &str =
    "session_id, chunks, bytes, stored_bytes, truncated, started_at, cols, rows, last_at";

fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordingInfo> {
    Ok(RecordingInfo {
        session_id: r.get(0)?,
        chunks: r.get::<_, i64>(1)?.max(0) as u64,
        bytes: r.get::<_, i64>(2)?.max(0) as u64,
        stored_bytes: r.get::<_, i64>(3)?.max(0) as u64,
        truncated: r.get(4)?,
        started_at: micros(r.get(5)?),
        cols: u16::try_from(r.get::<_, i64>(6)?).unwrap_or(80),
        rows: u16::try_from(r.get::<_, i64>(7)?).unwrap_or(24),
        last_at: micros(r.get(8)?),
    })
}

pub(crate) fn infos(c: &Connection, ids: &[String]) -> Result<Vec<RecordingInfo>> {
    let mut out = Vec::new();
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} FROM recordings WHERE session_id = ?1"
    ))?;
    for id in ids {
        if let Some(info) = stmt.query_row([id], info_from_row).optional()? {
            out.push(info);
        }
    }
    Ok(out)
}

pub(crate) fn recording(c: &Connection, session_id: &str) -> Result<Option<Recording>> {
    let Some(info) = infos(c, &[session_id.to_string()])?.pop() else {
        return Ok(None);
    };
    let chunks = c
        .prepare_cached(
            "SELECT session_id, seq, event_id, at, started_at, cols, rows, data_bytes, frames,
                    truncated
             FROM recording_chunks WHERE session_id = ?1 ORDER BY seq",
        )?
        .query_map([session_id], |r| {
            Ok(PackedChunk {
                session_id: r.get(0)?,
                seq: r.get(1)?,
                event_id: r.get(2)?,
                at_us: r.get(3)?,
                started_us: r.get(4)?,
                cols: r.get(5)?,
                rows: r.get(6)?,
                data_bytes: r.get(7)?,
                frames: r.get(8)?,
                truncated: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Recording { info, chunks }))
}

pub(crate) fn recorded_sessions(
    c: &Connection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(c.prepare_cached(
        "SELECT session_id FROM recordings WHERE session_id > ?1 ORDER BY session_id LIMIT ?2",
    )?
    .query_map(params![after.unwrap_or(""), limit], |r| r.get(0))?
    .collect::<rusqlite::Result<_>>()?)
}

fn delete_recording(tx: &rusqlite::Transaction<'_>, session_id: &str) -> Result<u64> {
    let chunks = tx
        .prepare_cached("DELETE FROM recording_chunks WHERE session_id = ?1")?
        .execute([session_id])? as u64;
    tx.prepare_cached("DELETE FROM recordings WHERE session_id = ?1")?
        .execute([session_id])?;
    Ok(chunks)
}

pub(crate) fn prune_recordings(conn: &mut Connection, before_us: i64, batch: i64) -> Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids: Vec<String> = tx
        .prepare_cached("SELECT session_id FROM recordings WHERE last_at < ?1 LIMIT ?2")?
        .query_map(params![before_us, batch], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        delete_recording(&tx, id)?;
    }
    tx.commit()?;
    Ok(ids.len() as u64)
}

/// Removes a session's recording when retention removes the session.
pub(crate) fn forget_recording(tx: &rusqlite::Transaction<'_>, session_id: &str) -> Result<()> {
    delete_recording(tx, session_id).map(|_| ())
}

pub(crate) fn erase(conn: &mut Connection, session_id: &str, audit: &AuditEntry) -> Result<Erased> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let events = tx
        .prepare_cached("DELETE FROM events WHERE session_id = ?1")?
        .execute([session_id])? as u64;
    let session = tx
        .prepare_cached("DELETE FROM sessions WHERE session_id = ?1")?
        .execute([session_id])?
        > 0;
    crate::search::unindex_session(&tx, session_id)?;
    let chunks = delete_recording(&tx, session_id)?;
    insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(Erased {
        session,
        events,
        chunks,
    })
}

fn insert_audit(c: &Connection, e: &AuditEntry) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, session_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        e.at.timestamp_micros(),
        e.actor,
        e.action,
        e.session_id,
        e.detail
    ])?;
    Ok(())
}

pub(crate) fn record_audit(conn: &mut Connection, e: &AuditEntry) -> Result<()> {
    insert_audit(conn, e)
}

pub(crate) fn audit_log(
    c: &Connection,
    session_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    let sql = match session_id {
        Some(_) => {
            "SELECT id, at, actor, action, session_id, detail FROM audit_log
             WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2"
        }
        None => {
            "SELECT id, at, actor, action, session_id, detail FROM audit_log
             WHERE ?1 IS NULL ORDER BY id DESC LIMIT ?2"
        }
    };
    Ok(c.prepare_cached(sql)?
        .query_map(params![session_id, limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: micros(r.get(1)?),
                actor: r.get(2)?,
                action: r.get(3)?,
                session_id: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}
