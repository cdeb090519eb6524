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
        let line = Line::Event {
            created_us: created.timestamp_micros(),
            event,
        }
        .encode();
        let mut state = self.lock();
        let len = line.len() as u64;
        if state.written.saturating_add(len) > self.limits.max_bytes {
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
        state.written += len;
        Ok(())
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
mod tests {
    use super::*;

    fn event(n: u32) -> OutgoingEvent {
        OutgoingEvent {
            event_id: format!("id-{n}"),
            session_id: "s-1".into(),
            event_type: "command".into(),
            payload: format!(r#"{{"n":{n},"text":"tab\there"}}"#),
        }
    }

    #[test]
    fn lines_round_trip() {
        let line = Line::Event {
            created_us: 42,
            event: event(1),
        };
        let text = line.encode();
        assert_eq!(text.matches('\n').count(), 1);
        assert_eq!(Line::decode(text.trim_end().as_bytes()), Some(line));
        let d = Line::Dropped {
            count: 3,
            reason: "a\tb".into(),
        };
        assert_eq!(
            Line::decode(d.encode().trim_end().as_bytes()),
            Some(Line::Dropped {
                count: 3,
                reason: "a b".into()
            })
        );
    }

    #[test]
    fn cut_lines_are_left_or_refused() {
        let whole = Line::Event {
            created_us: 1,
            event: event(1),
        }
        .encode();
        let second = Line::Event {
            created_us: 2,
            event: event(2),
        }
        .encode();
        let mut bytes = whole.clone().into_bytes();
        bytes.extend_from_slice(&second.as_bytes()[..second.len() - 5]);
        let live = parse_chunk(&bytes, false);
        assert_eq!(live.lines.len(), 1);
        assert!(live.lines[0].is_some());
        assert_eq!(live.consumed, whole.len() as u64);
        let finished = parse_chunk(&bytes, true);
        assert_eq!(finished.lines.len(), 2);
        assert!(finished.lines[1].is_none());
        assert_eq!(finished.consumed, bytes.len() as u64);
        assert!(Line::decode(b"X\tnonsense").is_none());
        assert!(Line::decode(b"E\t1\ta\tb\tc\t{\"cut\":").is_none());
    }

    #[test]
    fn journals_are_private_to_their_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let w = JournalWriter::create(&dir.path().join("home"), BufferLimits::default()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&w.path), 0o600);
        assert_eq!(mode(&journal_dir(&dir.path().join("home"))), 0o700);
    }

    #[test]
    fn writers_hold_one_slot_each_until_they_close() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits::default();
        let a = JournalWriter::create(dir.path(), limits).unwrap();
        let b = JournalWriter::create(dir.path(), limits).unwrap();
        a.append(event(1), Utc::now()).unwrap();
        b.append(event(2), Utc::now()).unwrap();
        let slots = segments(dir.path()).unwrap();
        assert_eq!(slots.len(), 2);
        // Held by their writers: an exclusive lock is refused.
        for (_, p) in &slots {
            assert!(File::open(p).unwrap().try_lock().is_err());
        }
        a.close();
        assert!(File::open(&slots[0].1).unwrap().try_lock().is_ok());
        // Closed: nothing more is written.
        a.append(event(3), Utc::now()).unwrap();
        let text = std::fs::read(&slots[0].1).unwrap();
        assert_eq!(parse_chunk(&text, true).lines.len(), 1);
        // The freed slot is taken again before a new one is made.
        let c = JournalWriter::create(dir.path(), limits).unwrap();
        assert_eq!(c.path, slots[0].1);
        assert_eq!(segments(dir.path()).unwrap().len(), 2);
        drop(b);
    }

    #[test]
    fn a_session_over_the_byte_bound_records_its_drops() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits {
            max_bytes: 200,
            ..BufferLimits::default()
        };
        let w = JournalWriter::create(dir.path(), limits).unwrap();
        for n in 0..5 {
            w.append(event(n), Utc::now()).unwrap();
        }
        w.close();
        let segs = segments(dir.path()).unwrap();
        let chunk = parse_chunk(&std::fs::read(&segs[0].1).unwrap(), true);
        let events = chunk
            .lines
            .iter()
            .filter(|l| matches!(l, Some(Line::Event { .. })))
            .count();
        assert!((1..5).contains(&events), "{events}");
        assert!(chunk.lines.iter().any(|l| matches!(
            l,
            Some(Line::Dropped { count, .. }) if *count == 5 - events as u64
        )));
    }

    fn queued_ids(buffer: &crate::Buffer) -> Vec<String> {
        buffer
            .list(1_000_000)
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .collect()
    }

    #[test]
    fn import_moves_lines_in_order_and_deletes_finished_segments() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits::default();
        let buffer = crate::Buffer::open(dir.path(), limits).unwrap();
        let w = JournalWriter::create(dir.path(), limits).unwrap();
        for n in 0..3 {
            w.append(event(n), Utc::now()).unwrap();
        }
        // Live: moved, kept (its writer may append more), counted once.
        assert_eq!(buffer.import_journals().unwrap(), 3);
        assert_eq!(buffer.import_journals().unwrap(), 0);
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
        w.append(event(3), Utc::now()).unwrap();
        assert_eq!(
            buffer.stats().unwrap().pending,
            4,
            "3 queued + 1 in the journal"
        );
        w.close();
        assert_eq!(buffer.import_journals().unwrap(), 1);
        assert!(
            all_empty(dir.path()),
            "a slot nobody holds is emptied once moved"
        );
        assert_eq!(queued_ids(&buffer), ["id-0", "id-1", "id-2", "id-3"]);
        // The next writer reuses the slot.
        let w = JournalWriter::create(dir.path(), limits).unwrap();
        w.append(event(4), Utc::now()).unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
        w.close();
        assert_eq!(buffer.import_journals().unwrap(), 1);
        assert_eq!(buffer.stats().unwrap().pending, 5);
        let offsets: i64 = buffer
            .conn()
            .query_row("SELECT count(*) FROM journal_offsets", [], |r| r.get(0))
            .unwrap();
        assert_eq!(offsets, 0, "a deleted segment's offset is forgotten");
    }

    #[test]
    fn a_segment_cut_by_a_crash_keeps_its_whole_lines_and_counts_the_cut_one() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits::default();
        let buffer = crate::Buffer::open(dir.path(), limits).unwrap();
        std::fs::create_dir_all(journal_dir(dir.path())).unwrap();
        let mut text = String::new();
        let now = Utc::now().timestamp_micros();
        for n in 0..2 {
            text.push_str(
                &Line::Event {
                    created_us: now,
                    event: event(n),
                }
                .encode(),
            );
        }
        let cut = Line::Event {
            created_us: now,
            event: event(9),
        }
        .encode();
        text.push_str(&cut[..cut.len() / 2]);
        // Nobody holds it: the writer died.
        let path = slot_path(&journal_dir(dir.path()), 0);
        std::fs::write(&path, text).unwrap();
        assert_eq!(buffer.import_journals().unwrap(), 2);
        assert!(all_empty(dir.path()));
        let stats = buffer.stats().unwrap();
        assert_eq!(stats.pending, 2);
        assert_eq!(stats.dropped, 1);
        assert_eq!(stats.dropped_unreported, 1);
    }

    #[test]
    fn import_applies_the_buffer_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits {
            max_events: 3,
            ..BufferLimits::default()
        };
        let buffer = crate::Buffer::open(dir.path(), limits).unwrap();
        let w = JournalWriter::create(dir.path(), limits).unwrap();
        for n in 0..5 {
            w.append(event(n), Utc::now()).unwrap();
        }
        // Older than the age bound when written: dropped at import.
        w.append(event(5), Utc::now() - chrono::Duration::days(30))
            .unwrap();
        w.close();
        buffer.import_journals().unwrap();
        assert_eq!(queued_ids(&buffer), ["id-2", "id-3", "id-4"]);
        assert_eq!(buffer.stats().unwrap().dropped, 3);
    }

    #[test]
    fn an_old_buffer_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits::default();
        {
            let buffer = crate::Buffer::open(dir.path(), limits).unwrap();
            buffer
                .enqueue(&OutgoingEvent {
                    event_id: "kept".into(),
                    ..event(0)
                })
                .unwrap();
            buffer
                .conn()
                .execute_batch("DROP TABLE journal_offsets; PRAGMA user_version = 1;")
                .unwrap();
        }
        let buffer = crate::Buffer::open(dir.path(), limits).unwrap();
        let w = JournalWriter::create(dir.path(), limits).unwrap();
        w.append(event(1), Utc::now()).unwrap();
        w.close();
        assert_eq!(buffer.import_journals().unwrap(), 1);
        assert_eq!(queued_ids(&buffer), ["kept", "id-1"]);
    }

    /// Several importers (separate connections, as separate processes have) race over journals
    /// that writers are still appending to, closing and taking again: every event is queued
    /// exactly once, each writer's in the order written, and every slot is empty in the end.
    #[test]
    fn concurrent_importers_move_every_line_exactly_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let limits = BufferLimits::default();
        drop(crate::Buffer::open(&home, limits).unwrap());
        let done = Arc::new(AtomicBool::new(false));
        let importers: Vec<_> = (0..3)
            .map(|_| {
                let home = home.clone();
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    let buffer = crate::Buffer::open(&home, limits).unwrap();
                    while !done.load(Ordering::Acquire) {
                        buffer.import_journals().unwrap();
                    }
                    buffer.import_journals().unwrap();
                })
            })
            .collect();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let home = home.clone();
                std::thread::spawn(move || {
                    let session = format!("s-w{w}");
                    let mut writer = JournalWriter::create(&home, limits).unwrap();
                    for n in 0..300 {
                        if n % 100 == 99 {
                            // Sessions end and new ones take the freed slots.
                            writer.close();
                            writer = JournalWriter::create(&home, limits).unwrap();
                        }
                        writer
                            .append(
                                OutgoingEvent {
                                    event_id: format!("{session}-{n:04}"),
                                    session_id: session.clone(),
                                    ..event(n)
                                },
                                Utc::now(),
                            )
                            .unwrap();
                    }
                    writer.close();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        for i in importers {
            i.join().unwrap();
        }
        let buffer = crate::Buffer::open(&home, limits).unwrap();
        buffer.import_journals().unwrap();
        let ids = queued_ids(&buffer);
        assert_eq!(ids.len(), 1200, "each event exactly once");
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 1200, "no event twice");
        // Each writer session (0–98, 99–198, 199–298, 299) in the order written.
        for w in 0..4 {
            for (first, last) in [(0, 98), (99, 198), (199, 298), (299, 299)] {
                let session: Vec<String> =
                    (first..=last).map(|n| format!("s-w{w}-{n:04}")).collect();
                let seen: Vec<&String> = ids.iter().filter(|i| session.contains(i)).collect();
                assert_eq!(
                    seen,
                    session.iter().collect::<Vec<_>>(),
                    "writer {w} from {first} in order"
                );
            }
        }
        assert!(all_empty(&home));
    }

    /// A writer that takes a slot whose last writer died mid-line ends that line first: the
    /// cut line is counted as dropped and the new session's first event is intact.
    #[test]
    fn a_new_writer_ends_a_line_cut_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits::default();
        std::fs::create_dir_all(journal_dir(dir.path())).unwrap();
        let cut = Line::Event {
            created_us: Utc::now().timestamp_micros(),
            event: event(1),
        }
        .encode();
        std::fs::write(slot_path(&journal_dir(dir.path()), 0), &cut[..10]).unwrap();
        let w = JournalWriter::create(dir.path(), limits).unwrap();
        w.append(event(2), Utc::now()).unwrap();
        // Live: the cut line is complete now, so it is taken (as unreadable) with the rest.
        let buffer = crate::Buffer::open(dir.path(), limits).unwrap();
        assert_eq!(buffer.import_journals().unwrap(), 1);
        assert_eq!(queued_ids(&buffer), ["id-2"]);
        assert_eq!(buffer.stats().unwrap().dropped, 1);
    }

    /// A long session keeps its slot; what was moved out of it stops taking disk space.
    #[test]
    fn a_long_sessions_moved_lines_free_their_disk_space() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits::default();
        let buffer = crate::Buffer::open(dir.path(), limits).unwrap();
        let w = JournalWriter::create(dir.path(), limits).unwrap();
        let pad = "p".repeat(1000);
        for n in 0..3000 {
            let e = OutgoingEvent {
                payload: format!(r#"{{"n":{n},"pad":"{pad}"}}"#),
                ..event(n)
            };
            w.append(e, Utc::now()).unwrap();
        }
        assert_eq!(buffer.import_journals().unwrap(), 3000);
        w.append(event(3000), Utc::now()).unwrap();
        assert_eq!(buffer.import_journals().unwrap(), 1);
        let meta = std::fs::metadata(&w.path).unwrap();
        assert!(meta.len() > 3_000_000);
        assert!(
            meta.blocks() * 512 < 64 * 1024,
            "{} bytes still allocated",
            meta.blocks() * 512
        );
        w.close();
        assert_eq!(buffer.import_journals().unwrap(), 0);
        assert!(all_empty(dir.path()));
        assert_eq!(buffer.stats().unwrap().pending, 3001);
    }

    fn all_empty(home: &Path) -> bool {
        segments(home)
            .unwrap()
            .iter()
            .all(|(_, p)| std::fs::metadata(p).unwrap().len() == 0)
    }

    proptest::proptest! {
        /// Whatever a journal file holds (a crash, a disk error, another program), reading it
        /// never panics, takes only what is there, and leaves a live file's unfinished line.
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            for finished in [false, true] {
                let chunk = parse_chunk(&bytes, finished);
                proptest::prop_assert!(chunk.consumed as usize <= bytes.len());
                if !finished {
                    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                    proptest::prop_assert_eq!(chunk.consumed as usize, complete);
                }
            }
        }

        /// Any event (ids and text of any characters, tabs and newlines included in the JSON
        /// strings) is one line that reads back as itself.
        #[test]
        fn any_event_round_trips(
            created_us in proptest::prelude::any::<i64>(),
            text in ".*",
            id in "[a-zA-Z0-9-]{1,40}",
        ) {
            let payload = serde_json::json!({"event_id": id, "args": text}).to_string();
            let line = Line::Event {
                created_us,
                event: OutgoingEvent {
                    event_id: id.clone(),
                    session_id: format!("s-{id}"),
                    event_type: "command".into(),
                    payload,
                },
            };
            let encoded = line.encode();
            proptest::prop_assert_eq!(encoded.matches('\n').count(), 1);
            let chunk = parse_chunk(encoded.as_bytes(), false);
            proptest::prop_assert_eq!(chunk.lines, vec![Some(line)]);
        }
    }
}
