//! Moving the session journals (`journal.rs`: what a shell's hooks append without opening the
//! buffer) into the queue, slot by slot, and counting what they still hold.

use std::path::Path;

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::queue::{describe_age, insert};
use super::state::record_drops;
use super::{from_micros, micros, to_i64, to_u64};
use crate::config::BufferLimits;
use crate::error::ClientError;
use crate::journal::{self, Line, journal_dir};

pub(super) enum ImportError {
    Io(std::io::Error),
    Buffer(ClientError),
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Buffer(e.into())
    }
}

impl From<ClientError> for ImportError {
    fn from(e: ClientError) -> Self {
        ImportError::Buffer(e)
    }
}

/// Moves one journal slot's new lines into the queue; empties the slot when no writer holds it
/// and everything in it is moved.
pub(super) fn import_segment(
    conn: &mut Connection,
    name: &str,
    path: &Path,
    limits: BufferLimits,
) -> Result<u64, ImportError> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::FileExt;

    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(ImportError::Io(e)),
    };
    // Taken before reading and held to the end: with it, no writer appends meanwhile, so a
    // line without its newline was cut by a crash, and the slot may be emptied.
    let idle = file.try_lock().is_ok();
    // Nothing new and nothing to empty (an empty slot, or a writer's slot read to its end):
    // no write transaction, which would only contend with the other processes of the host.
    let len = file.metadata().map_err(ImportError::Io)?.len();
    if len == 0 || (!idle && recorded_offset(conn, name)? == len) {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again inside the transaction: another importer may have moved lines meanwhile.
    let recorded = recorded_offset(&tx, name)?;
    let len = file.metadata().map_err(ImportError::Io)?.len();
    // An offset past the end: the file was emptied behind our back; all of it is new.
    let offset = if recorded > len { 0 } else { recorded };
    let mut new = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .map_err(ImportError::Io)?;
    file.read_to_end(&mut new).map_err(ImportError::Io)?;
    let chunk = journal::parse_chunk(&new, idle);
    let now = Utc::now();
    let max_age = chrono::Duration::from_std(limits.max_age).unwrap_or(chrono::Duration::MAX);
    let cutoff = micros(now.checked_sub_signed(max_age).unwrap_or_default());
    let mut moved = 0;
    let mut unreadable = 0u64;
    let mut expired = 0u64;
    for line in chunk.lines {
        match line {
            // A journal left unimported past the age bound (no sender ran on this host):
            // dropped as the queue drops its own expired events.
            Some(Line::Event { created_us, .. }) if created_us < cutoff => expired += 1,
            Some(Line::Event { created_us, event }) => {
                insert(&tx, &event, from_micros(created_us), now, limits)?;
                moved += 1;
            }
            Some(Line::Dropped { count, reason }) => record_drops(&tx, count, &[reason])?,
            None => unreadable += 1,
        }
    }
    if expired > 0 {
        tracing::warn!(journal = %path.display(), expired, "dropped expired journal lines");
        let reason = format!("older than {}", describe_age(limits.max_age));
        record_drops(&tx, expired, &[reason])?;
    }
    if unreadable > 0 {
        tracing::warn!(journal = %path.display(), unreadable, "dropped unreadable journal lines");
        record_drops(&tx, unreadable, &["unreadable journal line".to_string()])?;
    }
    let end = offset + chunk.consumed;
    let empty_it = idle && chunk.consumed == new.len() as u64 && end > 0;
    if empty_it {
        tx.prepare_cached("DELETE FROM journal_offsets WHERE name = ?1")?
            .execute([name])?;
        // Emptied inside the transaction: another importer reads the offset only after our
        // commit, and then finds the file empty too, never its old lines from offset 0.
        file.set_len(0).map_err(ImportError::Io)?;
    } else if end != recorded {
        tx.prepare_cached(
            "INSERT INTO journal_offsets (name, offset) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET offset = excluded.offset",
        )?
        .execute(params![name, to_i64(end)])?;
    }
    if let Err(e) = tx.commit() {
        if empty_it {
            // Nothing was moved after all: put the lines back where the offset still points.
            if let Err(w) = file.write_all_at(&new, offset) {
                tracing::error!(journal = %path.display(), error = %w, "cannot restore a journal after a failed import");
            }
        }
        return Err(e.into());
    }
    if !idle && end / journal::RECLAIM_BYTES > recorded / journal::RECLAIM_BYTES {
        // A long session still writes here: free the disk space of what is moved.
        let upto = end & !4095;
        let punched = nix::fcntl::fallocate(
            &file,
            nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            0,
            i64::try_from(upto).unwrap_or(0),
        );
        if let Err(e) = punched {
            tracing::debug!(journal = %path.display(), error = %e, "cannot free the moved part of a journal");
        }
    }
    Ok(moved)
}

/// How far the journal slot `name` has been moved into the queue (0 when never).
pub(super) fn recorded_offset(conn: &Connection, name: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .prepare_cached("SELECT offset FROM journal_offsets WHERE name = ?1")?
        .query_row([name], |r| r.get::<_, i64>(0))
        .optional()?
        .map_or(0, to_u64))
}

/// Events in the journals not yet moved into the queue: (count, bytes, oldest creation).
pub(super) fn journal_pending(
    conn: &Connection,
    home: &Path,
) -> Result<(u64, u64, Option<i64>), ClientError> {
    use std::io::{Read, Seek, SeekFrom};
    let segs = journal::segments(home).map_err(|source| ClientError::JournalRead {
        path: journal_dir(home),
        source,
    })?;
    let (mut events, mut bytes, mut oldest) = (0u64, 0u64, None::<i64>);
    for (name, path) in segs {
        let offset = recorded_offset(conn, &name)?;
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let offset = if offset > len { 0 } else { offset };
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(offset)).is_err() || file.read_to_end(&mut buf).is_err() {
            continue;
        }
        for line in journal::parse_chunk(&buf, false)
            .lines
            .into_iter()
            .flatten()
        {
            if let Line::Event { created_us, event } = line {
                events += 1;
                bytes += event.payload.len() as u64;
                oldest = Some(oldest.map_or(created_us, |o| o.min(created_us)));
            }
        }
    }
    Ok((events, bytes, oldest))
}
