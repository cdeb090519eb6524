//! Session journals: the tracked process's side of the local buffer.
//!
//! A [`Tracker`](crate::Tracker) does not open SQLite. Each event is one `write(2)` of one line
//! appended to its session's journal, `$SESSION_BUDDY_HOME/journal/<session>.<segment>.journal`:
//! once the call returns the event survives a crash of the process, as a commit to the WAL
//! with `synchronous=NORMAL` does. The host's sender (whichever process holds `sender.lock`)
//! moves journal lines into `buffer.db` ([`Buffer::import_journals`](crate::Buffer::import_journals)),
//! where the bounds apply and from where they are delivered. Opening SQLite, reading its
//! schema and compiling statements costs a fresh process more than the whole rest of its
//! tracking; a journal line costs one `write(2)`.
//!
//! Format: one event per line, tab-separated, `E  created_us  event_id  session_id  event_type
//! json` (compact JSON has no raw tab or newline). `D  count  reason` records events the writer
//! itself dropped. The writer holds a shared `flock` on its open segment; a segment nobody
//! holds is finished: once imported to its end it is deleted. A line without its newline is
//! either still being written (a live segment: left for the next import) or was cut by a
//! crash (a finished segment: counted as dropped).

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

/// A segment is closed and a new one begun past this many bytes, so what has been imported
/// can be deleted while a long session goes on.
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

const SUFFIX: &str = ".journal";

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

struct Segment {
    file: File,
    path: PathBuf,
    bytes: u64,
}

struct WriterState {
    segment: Option<Segment>,
    next_segment: u32,
    /// Bytes this session has written, all segments.
    written: u64,
    /// Events refused because this session alone exceeded the buffer's byte bound.
    dropped: u64,
    closed: bool,
}

/// The journal of one session, written by its tracked process (several threads).
pub(crate) struct JournalWriter {
    dir: PathBuf,
    session_id: String,
    limits: BufferLimits,
    state: Mutex<WriterState>,
}

impl JournalWriter {
    /// Creates the session's first segment.
    pub(crate) fn create(
        home: &Path,
        session_id: &str,
        limits: BufferLimits,
    ) -> Result<JournalWriter, ClientError> {
        let dir = journal_dir(home);
        std::fs::create_dir_all(&dir).map_err(|source| ClientError::Home {
            path: dir.clone(),
            source,
        })?;
        let writer = JournalWriter {
            dir,
            session_id: session_id.to_string(),
            limits,
            state: Mutex::new(WriterState {
                segment: None,
                next_segment: 0,
                written: 0,
                dropped: 0,
                closed: false,
            }),
        };
        {
            let mut state = writer.lock();
            let segment = writer.open_segment(&mut state)?;
            state.segment = Some(segment);
        }
        Ok(writer)
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_segment(&self, state: &mut WriterState) -> Result<Segment, ClientError> {
        let path = self.dir.join(format!(
            "{}.{:06}{SUFFIX}",
            self.session_id, state.next_segment
        ));
        state.next_segment += 1;
        let journal_err = |source| ClientError::Journal {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(journal_err)?;
        // Held while the segment is open: an importer that can take it exclusively knows
        // nobody will write here again. Released by the kernel if this process dies.
        file.lock_shared().map_err(journal_err)?;
        Ok(Segment {
            file,
            path,
            bytes: 0,
        })
    }

    /// Appends one event (one `write(2)`); the event survives a crash of this process once
    /// this returns.
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
        if state.closed {
            return Ok(());
        }
        let len = line.len() as u64;
        if state.written.saturating_add(len) > self.limits.max_bytes {
            // One session alone over the whole buffer's byte bound: keep what is written,
            // count the rest, and say so when the journal closes.
            state.dropped += 1;
            return Ok(());
        }
        if state
            .segment
            .as_ref()
            .is_none_or(|s| s.bytes > 0 && s.bytes + len > SEGMENT_BYTES)
        {
            // Closing the old segment (dropping it) releases its lock: it can be imported
            // and deleted.
            state.segment = None;
            let segment = self.open_segment(&mut state)?;
            state.segment = Some(segment);
        }
        let Some(segment) = state.segment.as_mut() else {
            return Ok(());
        };
        segment
            .file
            .write_all(line.as_bytes())
            .map_err(|source| ClientError::Journal {
                path: segment.path.clone(),
                source,
            })?;
        segment.bytes += len;
        state.written += len;
        Ok(())
    }

    /// Closes the journal: records what the writer dropped, releases the segment. Nothing is
    /// written after. Idempotent.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        let dropped = state.dropped;
        if let Some(segment) = state.segment.as_mut()
            && dropped > 0
        {
            let line = Line::Dropped {
                count: dropped,
                reason: format!("one session over {} bytes", self.limits.max_bytes),
            }
            .encode();
            if let Err(e) = segment.file.write_all(line.as_bytes()) {
                tracing::debug!(error = %e, "cannot record the journal's dropped events");
            }
        }
        state.segment = None;
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The journal segments of `home`, in name order (a session's segments in the order written).
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
    fn a_writer_appends_rotates_and_releases_its_segments() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits::default();
        let w = JournalWriter::create(dir.path(), "s-1", limits).unwrap();
        w.append(event(1), Utc::now()).unwrap();
        let segs = segments(dir.path()).unwrap();
        assert_eq!(segs.len(), 1);
        // Held by the writer: an exclusive lock is refused.
        let f = File::open(&segs[0].1).unwrap();
        assert!(f.try_lock().is_err());
        drop(f);
        // Past the segment size a new segment begins and the old one is released.
        {
            let mut state = w.lock();
            if let Some(s) = state.segment.as_mut() {
                s.bytes = SEGMENT_BYTES;
            }
        }
        w.append(event(2), Utc::now()).unwrap();
        let segs = segments(dir.path()).unwrap();
        assert_eq!(segs.len(), 2);
        assert!(File::open(&segs[0].1).unwrap().try_lock().is_ok());
        assert!(File::open(&segs[1].1).unwrap().try_lock().is_err());
        w.close();
        assert!(File::open(&segs[1].1).unwrap().try_lock().is_ok());
        w.append(event(3), Utc::now()).unwrap();
        let text = std::fs::read(&segs[1].1).unwrap();
        assert_eq!(parse_chunk(&text, true).lines.len(), 1);
    }

    #[test]
    fn a_session_over_the_byte_bound_records_its_drops() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BufferLimits {
            max_bytes: 200,
            ..BufferLimits::default()
        };
        let w = JournalWriter::create(dir.path(), "s-2", limits).unwrap();
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
        let w = JournalWriter::create(dir.path(), "s-3", limits).unwrap();
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
        assert!(segments(dir.path()).unwrap().is_empty());
        assert_eq!(queued_ids(&buffer), ["id-0", "id-1", "id-2", "id-3"]);
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
        let path = journal_dir(dir.path()).join("s-4.000000.journal");
        std::fs::write(&path, text).unwrap();
        assert_eq!(buffer.import_journals().unwrap(), 2);
        assert!(!path.exists());
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
        let w = JournalWriter::create(dir.path(), "s-5", limits).unwrap();
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
        let w = JournalWriter::create(dir.path(), "s-6", limits).unwrap();
        w.append(event(1), Utc::now()).unwrap();
        w.close();
        assert_eq!(buffer.import_journals().unwrap(), 1);
        assert_eq!(queued_ids(&buffer), ["kept", "id-1"]);
    }

    /// Several importers (separate connections, as separate processes have) race over journals
    /// that writers are still appending to and rotating: every event is queued exactly once,
    /// each session's in the order written, and every segment is deleted in the end.
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
                    let writer = JournalWriter::create(&home, &session, limits).unwrap();
                    for n in 0..300 {
                        if n % 100 == 99 {
                            // Force a rotation now and then.
                            let mut state = writer.lock();
                            if let Some(s) = state.segment.as_mut() {
                                s.bytes = SEGMENT_BYTES;
                            }
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
        for w in 0..4 {
            let prefix = format!("s-w{w}-");
            let mine: Vec<&String> = ids.iter().filter(|i| i.starts_with(&prefix)).collect();
            let expected: Vec<String> = (0..300).map(|n| format!("{prefix}{n:04}")).collect();
            assert_eq!(
                mine,
                expected.iter().collect::<Vec<_>>(),
                "session {w} in order"
            );
        }
        assert!(segments(&home).unwrap().is_empty());
    }
}
