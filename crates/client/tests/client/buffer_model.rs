//! The buffer against a model (Vector's disk-buffer approach): a `VecDeque` in FIFO order,
//! checked after every step of random enqueue / fetch-and-ack / reject / fail / crash-reopen
//! sequences, with limits small enough that overflow and expiry happen often.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use session_buddy_client::{Buffer, BufferLimits, MAX_REJECTIONS, OutgoingEvent, Settlement};

const LIMITS: BufferLimits = BufferLimits {
    max_events: 12,
    max_bytes: 3000,
    max_age: Duration::from_secs(120),
    max_recording_bytes: 256 * 1024 * 1024,
};

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        pad: usize,
    },
    Advance {
        secs: i64,
    },
    /// Fetch a batch and acknowledge the events whose bit is set.
    FetchAck {
        n: usize,
        mask: u32,
    },
    /// Fetch a batch; the server rejects all of it.
    Reject {
        n: usize,
    },
    /// Fetch a batch; the call fails (nothing changes).
    Fail {
        n: usize,
    },
    /// Drop the buffer (as a crash would) and open it again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..400).prop_map(|pad| Op::Enqueue { pad }),
        1 => (0i64..90).prop_map(|secs| Op::Advance { secs }),
        3 => (1usize..8, any::<u32>()).prop_map(|(n, mask)| Op::FetchAck { n, mask }),
        1 => (1usize..4).prop_map(|n| Op::Reject { n }),
        1 => (1usize..8).prop_map(|n| Op::Fail { n }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    event_id: String,
    bytes: u64,
    created: DateTime<Utc>,
    attempts: u32,
}

#[derive(Default)]
struct Model {
    queue: VecDeque<Entry>,
    dead: Vec<String>,
    dropped: u64,
}

impl Model {
    fn enqueue(&mut self, e: Entry, now: DateTime<Utc>) -> u64 {
        self.queue.push_back(e);
        let before = self.queue.len();
        while self.queue.len() as u64 > LIMITS.max_events {
            self.queue.pop_front();
        }
        while self.queue.iter().map(|e| e.bytes).sum::<u64>() > LIMITS.max_bytes {
            self.queue.pop_front();
        }
        let cutoff = now - chrono::Duration::from_std(LIMITS.max_age).unwrap();
        while self.queue.front().is_some_and(|e| e.created < cutoff) {
            self.queue.pop_front();
        }
        let dropped = (before - self.queue.len()) as u64;
        self.dropped += dropped;
        dropped
    }
}

fn check(buffer: &Buffer, model: &Model) -> Result<(), TestCaseError> {
    let real: Vec<Entry> = buffer
        .list(10_000)
        .unwrap()
        .into_iter()
        .map(|e| Entry {
            event_id: e.event_id,
            bytes: e.bytes,
            created: e.created_at,
            attempts: e.attempts,
        })
        .collect();
    let expected: Vec<Entry> = model.queue.iter().cloned().collect();
    prop_assert_eq!(real, expected);
    let stats = buffer.stats().unwrap();
    prop_assert_eq!(stats.pending, model.queue.len() as u64);
    prop_assert_eq!(
        stats.pending_bytes,
        model.queue.iter().map(|e| e.bytes).sum::<u64>()
    );
    prop_assert_eq!(stats.dead_letters, model.dead.len() as u64);
    prop_assert_eq!(stats.dropped, model.dropped);
    let dead: Vec<String> = buffer
        .list_dead_letters(10_000)
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    prop_assert_eq!(dead, model.dead.clone());
    Ok(())
}

fn run(home: &Path, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut buffer = Buffer::open(home, LIMITS).unwrap();
    let mut model = Model::default();
    let mut now = Utc.with_ymd_and_hms(2026, 2, 6, 12, 0, 0).unwrap();
    let mut next = 0u64;
    for op in ops {
        match op {
            Op::Enqueue { pad } => {
                next += 1;
                let event_id = format!("ev-{next:05}");
                let payload = format!(r#"{{"event_id":"{event_id}","pad":"{}"}}"#, "p".repeat(pad));
                let bytes = payload.len() as u64;
                let got = buffer
                    .enqueue_at(
                        &OutgoingEvent {
                            event_id: event_id.clone(),
                            session_id: "model-1".into(),
                            event_type: "heartbeat".into(),
                            payload,
                        },
                        now,
                    )
                    .unwrap();
                let dropped = model.enqueue(
                    Entry {
                        event_id,
                        bytes,
                        created: now,
                        attempts: 0,
                    },
                    now,
                );
                prop_assert_eq!(got.dropped, dropped);
            }
            Op::Advance { secs } => now += chrono::Duration::seconds(secs),
            Op::FetchAck { n, mask } => {
                let batch = buffer.fetch_batch(n).unwrap();
                prop_assert_eq!(batch.len(), n.min(model.queue.len()));
                let mut items = Vec::new();
                let mut acked = Vec::new();
                for (i, e) in batch.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        items.push((e.id, Settlement::Delivered));
                        acked.push(e.event_id.clone());
                    }
                }
                let counts = buffer.settle(&items).unwrap();
                prop_assert_eq!(counts.delivered, acked.len() as u64);
                model.queue.retain(|e| !acked.contains(&e.event_id));
            }
            Op::Reject { n } => {
                let batch = buffer.fetch_batch(n).unwrap();
                let items: Vec<_> = batch
                    .iter()
                    .map(|e| (e.id, Settlement::Rejected("field: rule".into())))
                    .collect();
                buffer.settle(&items).unwrap();
                let k = n.min(model.queue.len());
                let mut kept = VecDeque::new();
                for (i, mut e) in model.queue.drain(..).enumerate() {
                    if i < k {
                        e.attempts += 1;
                        if e.attempts >= MAX_REJECTIONS {
                            model.dead.push(e.event_id);
                            continue;
                        }
                    }
                    kept.push_back(e);
                }
                model.queue = kept;
            }
            Op::Fail { n } => {
                let _ = buffer.fetch_batch(n).unwrap();
                buffer
                    .record_delivery(
                        session_buddy_client::DeliveryOutcome::Unreachable {
                            error: "connection refused".into(),
                        },
                        now,
                    )
                    .unwrap();
            }
            Op::Reopen => {
                drop(buffer);
                buffer = Buffer::open(home, LIMITS).unwrap();
            }
        }
        check(&buffer, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn buffer_matches_a_fifo_model(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), ops)?;
    }
}

#[test]
fn every_enqueue_is_durable_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = Buffer::open(dir.path(), BufferLimits::default()).unwrap();
    let payload = format!(r#"{{"pad":"{}"}}"#, "x".repeat(400));
    let mut times = Vec::new();
    for i in 0..2000 {
        let t = std::time::Instant::now();
        buffer
            .enqueue(&OutgoingEvent {
                event_id: format!("e{i}"),
                session_id: "fast-1".into(),
                event_type: "command".into(),
                payload: payload.clone(),
            })
            .unwrap();
        times.push(t.elapsed());
    }
    drop(buffer);
    let buffer = Buffer::open(dir.path(), BufferLimits::default()).unwrap();
    assert_eq!(buffer.stats().unwrap().pending, 2000);
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    // Speed is measured by `session-buddy bench buffer` on a release build, not asserted here.
    eprintln!("enqueue p50 {:?} p99 {:?}", times[times.len() / 2], p99);
}
