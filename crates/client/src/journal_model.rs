//! Journals and their import against a model: writers (sessions) taking slots, appending,
//! closing, dying mid-line; imports with the buffer's bounds; deliveries; reopening the
//! buffer. After every step the queue, the pending count and the drop count must be what the
//! model says.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use proptest::prelude::*;

use crate::buffer::{Buffer, OutgoingEvent, Settlement};
use crate::config::BufferLimits;
use crate::journal::JournalWriter;

const WRITERS: usize = 3;

const LIMITS: BufferLimits = BufferLimits {
    max_events: 10,
    max_bytes: 1_000_000,
    max_age: Duration::from_secs(7 * 86_400),
    max_recording_bytes: 256 * 1024 * 1024,
};

#[derive(Debug, Clone)]
enum Op {
    /// Writer `w` appends an event (starting a session, taking a slot, if it has none).
    Append(usize),
    /// Writer `w`'s session ends.
    Close(usize),
    /// Writer `w`'s process dies in the middle of writing a line.
    Crash(usize),
    Import,
    /// Fetch up to `n` queued events; the server accepts them.
    Deliver(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..WRITERS).prop_map(Op::Append),
        2 => (0..WRITERS).prop_map(Op::Close),
        1 => (0..WRITERS).prop_map(Op::Crash),
        3 => Just(Op::Import),
        2 => (1usize..6).prop_map(Op::Deliver),
        1 => Just(Op::Reopen),
    ]
}

/// The model: which slot each writer holds, each slot's unimported lines (`None`: a cut
/// line), the queue, the drop count.
#[derive(Default)]
struct Model {
    holder: [Option<usize>; WRITERS],
    slots: Vec<VecDeque<Option<String>>>,
    queue: VecDeque<String>,
    dropped: u64,
}

impl Model {
    /// The slot a new writer takes: the lowest one no writer holds.
    fn take_slot(&mut self, w: usize) {
        let held: Vec<usize> = self.holder.iter().flatten().copied().collect();
        let slot = (0..).find(|s| !held.contains(s)).unwrap_or(0);
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, VecDeque::new());
        }
        self.holder[w] = Some(slot);
    }

    fn import(&mut self) {
        for slot in &mut self.slots {
            for line in slot.drain(..) {
                match line {
                    Some(id) => {
                        self.queue.push_back(id);
                        while self.queue.len() as u64 > LIMITS.max_events {
                            self.queue.pop_front();
                            self.dropped += 1;
                        }
                    }
                    None => self.dropped += 1,
                }
            }
        }
    }

    fn pending(&self) -> u64 {
        let journal: usize = self.slots.iter().map(|s| s.iter().flatten().count()).sum();
        (self.queue.len() + journal) as u64
    }
}

fn event(id: &str) -> OutgoingEvent {
    OutgoingEvent {
        event_id: id.to_string(),
        session_id: "model-1".into(),
        event_type: "command".into(),
        payload: format!(r#"{{"event_id":"{id}"}}"#),
    }
}

fn check(buffer: &Buffer, model: &Model) -> Result<(), TestCaseError> {
    let stats = buffer
        .stats()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(stats.pending, model.pending(), "pending");
    prop_assert_eq!(stats.dropped, model.dropped, "dropped");
    let queued: Vec<String> = buffer
        .list(10_000)
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    prop_assert_eq!(queued, model.queue.iter().cloned().collect::<Vec<_>>());
    Ok(())
}

fn run(home: &Path, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fail = |e: crate::ClientError| TestCaseError::fail(e.to_string());
    let mut buffer = Buffer::open(home, LIMITS).map_err(fail)?;
    let mut writers: Vec<Option<JournalWriter>> = (0..WRITERS).map(|_| None).collect();
    let mut model = Model::default();
    let mut next = 0u32;
    for op in ops {
        match op {
            Op::Append(w) => {
                if writers[w].is_none() {
                    writers[w] = Some(JournalWriter::create(home, LIMITS).map_err(fail)?);
                    model.take_slot(w);
                    // Taking a slot ends a line cut by a crash: it stays one unreadable line.
                }
                next += 1;
                let id = format!("ev-{next:05}");
                if let Some(writer) = &writers[w] {
                    writer.append(event(&id), Utc::now()).map_err(fail)?;
                }
                if let Some(slot) = model.holder[w] {
                    model.slots[slot].push_back(Some(id));
                }
            }
            Op::Close(w) => {
                if let Some(writer) = writers[w].take() {
                    writer.close();
                    model.holder[w] = None;
                }
            }
            Op::Crash(w) => {
                if let Some(writer) = writers[w].take() {
                    next += 1;
                    let line = format!(
                        "E\t{}\tev-{next:05}\tmodel-1\tcommand\t{{\"event_id\":\"ev-{next:05}\"}}\n",
                        Utc::now().timestamp_micros()
                    );
                    let path = writer.path.clone();
                    // The process dies: its lock goes with its file, half a line is on disk.
                    drop(writer.take_file());
                    drop(writer);
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&path)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    f.write_all(&line.as_bytes()[..line.len() / 2])
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    if let Some(slot) = model.holder[w].take() {
                        model.slots[slot].push_back(None);
                    }
                }
            }
            Op::Import => {
                buffer.import_journals().map_err(fail)?;
                model.import();
            }
            Op::Deliver(n) => {
                let batch = buffer.fetch_batch(n).map_err(fail)?;
                let items: Vec<_> = batch
                    .iter()
                    .map(|e| (e.id, Settlement::Delivered))
                    .collect();
                buffer.settle(&items).map_err(fail)?;
                for _ in 0..batch.len() {
                    model.queue.pop_front();
                }
            }
            Op::Reopen => {
                drop(buffer);
                buffer = Buffer::open(home, LIMITS).map_err(fail)?;
            }
        }
        check(&buffer, &model)?;
    }
    // Every session ends; a last import leaves every slot empty.
    for w in writers.iter_mut() {
        if let Some(writer) = w.take() {
            writer.close();
        }
    }
    model.holder = [None; WRITERS];
    buffer.import_journals().map_err(fail)?;
    model.import();
    check(&buffer, &model)?;
    for (_, path) in
        crate::journal::segments(home).map_err(|e| TestCaseError::fail(e.to_string()))?
    {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(1);
        prop_assert_eq!(len, 0, "{} not emptied", path.display());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn journals_and_import_match_a_model(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        run(dir.path(), ops)?;
    }
}
