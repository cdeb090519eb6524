//! Unit tests of `journal`.

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
            let session: Vec<String> = (first..=last).map(|n| format!("s-w{w}-{n:04}")).collect();
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
