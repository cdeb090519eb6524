//! Session journals: the tracked process's side of the local buffer.
//!
//! A [`Tracker`](crate::Tracker) does not open SQLite. Each event is one `write(2)` of one line
//! appended to a journal file, `$SESSION_BUDDY_HOME/journal/NNNNNN.journal`: once the call
//! returns the event survives a crash of the process, as a commit to the WAL with
//! `synchronous=NORMAL` does. The host's sender (whichever process holds `sender.lock`) moves
//! journal lines into `buffer.db` ([`Buffer::import_journals`](crate::Buffer::import_journals)),
//! where the bounds apply and from where they are delivered. Opening SQLite, reading its
//! schema and compiling statements costs a fresh process more than the whole rest of its
//! tracking; a journal line costs one `write(2)`.
//!
//! Journal files are slots, reused rather than created per session (creating and deleting a
//! file per session makes ext4 search ever longer for a free inode). A writer takes the first
//! slot it can lock exclusively (`flock`, released by the kernel if the process dies), ends a
//! line cut by a crash of an earlier writer, and appends to it for the whole session, so a
//! session is read in order. An importer takes the complete lines after the slot's recorded
//! offset; when it can lock the slot itself (no writer) and has taken everything, it empties
//! the file for the next writer; while a long session holds it, it frees what was moved every
//! [`RECLAIM_BYTES`] by punching a hole.
//!
//! Format: one event per line, tab-separated, `E  created_us  event_id  session_id  event_type
//! json` (compact JSON has no raw tab or newline). `D  count  reason` records events the writer
//! itself dropped. A line that is neither was cut by a crash and counts as dropped.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::buffer::OutgoingEvent;
use crate::config::BufferLimits;
use crate::error::ClientError;

/// The journals' directory inside the home directory.
pub const JOURNAL_DIR: &str = "journal";

/// While a writer holds a journal, the importer frees the disk space of what it has moved
/// (punching a hole, the file keeps its length) each time this many more bytes are moved.
pub const RECLAIM_BYTES: u64 = 1024 * 1024;

const SUFFIX: &str = ".journal";

/// Slots a writer tries before giving up (one per concurrent writer is needed).
const MAX_SLOTS: u32 = 100_000;

fn slot_path(dir: &Path, slot: u32) -> PathBuf {
    dir.join(format!("{slot:06}{SUFFIX}"))
}

/// Whether the file is empty or ends with a newline.
fn ends_with_newline(file: &File) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] == b'\n')
}

/// The journals' directory of `home`.
pub fn journal_dir(home: &Path) -> PathBuf {
    home.join(JOURNAL_DIR)
}

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    Event {
        created_us: i64,
        event: OutgoingEvent,
    },
    Dropped {
        count: u64,
        reason: String,
    },
}

impl Line {
    fn encode(&self) -> String {
        match self {
            Line::Event { created_us, event } => format!(
                "E\t{created_us}\t{}\t{}\t{}\t{}\n",
                event.event_id, event.session_id, event.event_type, event.payload
            ),
            Line::Dropped { count, reason } => {
                format!("D\t{count}\t{}\n", reason.replace(['\t', '\n'], " "))
            }
        }
    }

    /// Reads one line (without its newline); `None` when it is not one we wrote whole.
    pub(crate) fn decode(line: &[u8]) -> Option<Line> {
        let text = std::str::from_utf8(line).ok()?;
        let mut fields = text.splitn(6, '\t');
        match fields.next()? {
            "E" => {
                let created_us = fields.next()?.parse().ok()?;
                let event_id = fields.next()?.to_string();
                let session_id = fields.next()?.to_string();
                let event_type = fields.next()?.to_string();
                let payload = fields.next()?.to_string();
                // A cut line is not valid JSON; an intact one is an object.
                serde_json::from_str::<serde::de::IgnoredAny>(&payload).ok()?;
                if !payload.starts_with('{') || event_id.is_empty() || session_id.is_empty() {
                    return None;
                }
                Some(Line::Event {
                    created_us,
                    event: OutgoingEvent {
                        event_id,
                        session_id,
                        event_type,
                        payload,
                    },
                })
            }
            "D" => {
                let count = fields.next()?.parse().ok()?;
                let reason = fields.next().unwrap_or("").to_string();
                Some(Line::Dropped { count, reason })
            }
            _ => None,
        }
    }
}

struct WriterState {
    /// The slot, open and locked until the journal closes.
    file: Option<File>,
    /// Bytes this session has written.
    written: u64,
    /// Events refused because this session alone exceeded the buffer's byte bound.
    dropped: u64,
    /// Bytes of recording chunks written (their own quota, [`BufferLimits::max_recording_bytes`]).
    recorded: u64,
}

/// The journal of one session, written by its tracked process (several threads).
pub(crate) struct JournalWriter {
    pub(crate) path: PathBuf,
    limits: BufferLimits,
    state: Mutex<WriterState>,
}

impl JournalWriter {
    /// Takes the first free slot for the session.
    pub(crate) fn create(home: &Path, limits: BufferLimits) -> Result<JournalWriter, ClientError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = journal_dir(home);
        // Private: the journals hold who ran what, where.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| ClientError::Home {
                path: dir.clone(),
                source,
            })?;
        for slot in 0..MAX_SLOTS {
            let path = slot_path(&dir, slot);
            let journal_err = |source| ClientError::Journal {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(journal_err)?;
            match file.try_lock() {
                Ok(()) => {}
                // Another writer's, or an importer emptying it: the next one.
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => return Err(journal_err(e)),
            }
            // A writer that died mid-line left a cut line: end it, so it stays one unreadable
            // line instead of swallowing our first event.
            if !ends_with_newline(&file).map_err(journal_err)? {
                file.write_all(b"\n").map_err(journal_err)?;
            }
            return Ok(JournalWriter {
                path,
                limits,
                state: Mutex::new(WriterState {
                    file: Some(file),
                    written: 0,
                    dropped: 0,
                    recorded: 0,
                }),
            });
        }
        Err(ClientError::Journal {
            path: dir,
            source: std::io::Error::other(format!("no free journal slot among {MAX_SLOTS}")),
        })
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one event (one `write(2)`); the event survives a crash of this process once
    /// this returns. After [`close`](Self::close), does nothing.
    pub(crate) fn append(
        &self,
        event: OutgoingEvent,
        created: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        let chunk = event.event_type == crate::buffer::OUTPUT;
        let line = Line::Event {
            created_us: created.timestamp_micros(),
            event,
        }
        .encode();
        let mut state = self.lock();
        let len = line.len() as u64;
        let (used, bound) = if chunk {
            (state.recorded, self.limits.max_recording_bytes)
        } else {
            (state.written, self.limits.max_bytes)
        };
        if used.saturating_add(len) > bound {
            // One session alone over the whole buffer's byte bound: keep what is written,
            // count the rest, and say so when the journal closes.
            state.dropped += 1;
            return Ok(());
        }
        let Some(file) = state.file.as_mut() else {
            return Ok(());
        };
        file.write_all(line.as_bytes())
            .map_err(|source| ClientError::Journal {
                path: self.path.clone(),
                source,
            })?;
        if chunk {
            state.recorded += len;
        } else {
            state.written += len;
        }
        Ok(())
    }

    /// Forgets the slot without writing or closing it (a `fork()`ed child's copy, which
    /// [`Tracker::forget_after_fork`](crate::Tracker::forget_after_fork) closes by what it is).
    /// Never blocks: the state may be locked by a thread of the parent that is not there.
    pub(crate) fn forget_after_fork(&self) {
        if let Ok(mut state) = self.state.try_lock() {
            std::mem::forget(state.file.take());
        }
    }

    /// The open slot, taken away (a test stands in for a process that dies with it open).
    #[cfg(test)]
    pub(crate) fn take_file(&self) -> Option<File> {
        self.lock().file.take()
    }

    /// Closes the journal: records what the writer dropped and releases the slot (which the
    /// next import then empties). Idempotent.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        let dropped = state.dropped;
        let Some(mut file) = state.file.take() else {
            return;
        };
        if dropped > 0 {
            let line = Line::Dropped {
                count: dropped,
                reason: format!("one session over {} bytes", self.limits.max_bytes),
            }
            .encode();
            if let Err(e) = file.write_all(line.as_bytes()) {
                tracing::debug!(error = %e, "cannot record the journal's dropped events");
            }
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The journal slots of `home`, in slot order (a session's slots in the order written).
pub(crate) fn segments(home: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let dir = journal_dir(home);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(SUFFIX) {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// What a read of a segment from `offset` found.
pub(crate) struct Chunk {
    pub lines: Vec<Option<Line>>,
    /// Bytes consumed (complete lines; everything if the segment is finished).
    pub consumed: u64,
}

/// Parses `bytes` (read from a segment at its import offset). Only complete lines are taken
/// unless the segment is `finished`, when a trailing cut line is taken as unreadable.
pub(crate) fn parse_chunk(bytes: &[u8], finished: bool) -> Chunk {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let take = if finished { bytes.len() } else { complete };
    let lines = bytes[..take]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(Line::decode)
        .collect();
    Chunk {
        lines,
        consumed: take as u64,
    }
}

#[cfg(test)]
mod tests;
