//! `bench seed`: the query benchmarks' dataset (docs/guarantees.md, "Performance targets"), written straight into a
//! database through the server's own store (`Store::ingest`, batches of 1000 events, several
//! in flight so the writer commits them in groups).
//!
//! 20 components, 50 users, 30 hosts; starts spread over the last 60 days in time order; half
//! of the sessions ended (durations from a minute to eight hours, some with a non-zero exit or
//! a signal), commands with some failures, and a few sessions abandoned by the reaper. The
//! rest stay active; they announce no heartbeats, so a server's reaper leaves them alone for
//! the legacy TTL (24 h).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, json};
use session_buddy_events::{
    CommandEvent, EnvironmentInfo, Event, EventOutcome, EventType, SessionEndEvent,
    SessionStartEvent, UserInfo,
};
use session_buddy_store::Store;
use tokio::task::JoinSet;

/// What `seed` writes.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// How many sessions to create (at least 1).
    pub sessions: u64,
    /// Seed of the pseudo-random choices (the same seed gives the same shape of data).
    pub seed: u64,
}

const COMPONENTS: [&str; 20] = [
    "oneiric",
    "session-buddy",
    "mahavishnu",
    "crackerjack",
    "akosha",
    "fastblocks",
    "billing",
    "inventory",
    "search",
    "payments",
    "auth",
    "gateway",
    "reports",
    "scheduler",
    "notifier",
    "catalog",
    "ledger",
    "metrics",
    "ingest",
    "archive",
];
const USERS: u64 = 50;
const HOSTS: u64 = 30;
const DAYS: i64 = 60;
const BATCH_EVENTS: usize = 1000;
const IN_FLIGHT: usize = 4;
/// Share of the sessions left active that the reaper abandons (per mille).
const ABANDONED_PER_MILLE: u64 = 4;
const HELPERS: [&str; 8] = [
    "status",
    "show_layers",
    "reload_settings",
    "ps",
    "crack",
    "lint",
    "aggregate",
    "build",
];
const ERRORS: [&str; 6] = [
    "connection refused",
    "permission denied",
    "timeout after 30s",
    "config file not found",
    "lint failed: 3 problems",
    "database is locked",
];

/// splitmix64: small, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn uuid(&mut self, low24: u64) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_be_bytes());
        bytes[8..].copy_from_slice(&self.next().to_be_bytes());
        // The session id ends with the id's last hex digits: these 24 make it distinct per session.
        bytes[13..16].copy_from_slice(&low24.to_be_bytes()[5..8]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// A realistic session length: mostly minutes, some hours.
fn duration_us(rng: &mut Rng) -> i64 {
    let secs = match rng.below(100) {
        0..=59 => 60 + rng.below(30 * 60 - 60),
        60..=89 => 30 * 60 + rng.below(90 * 60),
        _ => 2 * 3600 + rng.below(6 * 3600),
    };
    secs as i64 * 1_000_000 + rng.below(1_000_000) as i64
}

struct Seeded {
    events: Vec<Event>,
    /// Goes to the batches received long ago, for the reaper.
    abandon: bool,
}

fn session(rng: &mut Rng, i: u64, n: u64, id_offset: u64, now: DateTime<Utc>) -> Seeded {
    let span_us = DAYS * 86_400_000_000;
    let step = span_us / n.max(1) as i64;
    let jitter = rng.below(step.max(1) as u64) as i64;
    let started = now - TimeDelta::microseconds(span_us - i as i64 * step - jitter);
    let component = COMPONENTS[rng.below(COMPONENTS.len() as u64) as usize];
    let user = format!("user{:02}", rng.below(USERS) + 1);
    let host = format!("host-{:02}", rng.below(HOSTS) + 1);
    let event_id = rng.uuid((id_offset + i) & 0xff_ffff);
    let mut metadata = Map::new();
    if rng.chance(100) {
        metadata.insert("project".into(), json!(format!("{component}-ops")));
    }
    let start = SessionStartEvent {
        event_version: "1.1".into(),
        event_id,
        event_type: EventType::SessionStart,
        component_name: component.into(),
        shell_type: "AdminShell".into(),
        timestamp: started,
        pid: 1000 + rng.below(60_000) as u32,
        user: UserInfo {
            home: format!("/home/{user}"),
            username: user,
        },
        hostname: host,
        environment: EnvironmentInfo {
            python_version: None,
            platform: "Linux-6.8.0-x86_64".into(),
            cwd: format!("/srv/{component}"),
            runtime: Some("rust 1.95".into()),
        },
        metadata,
        session_type: None,
        component_version: Some("1.4.2".into()),
        heartbeat_interval_seconds: None,
        session_id_version: session_buddy_events::SessionIdRule::CURRENT.version(),
    };
    let session_id = start.session_id();
    let ended = rng.chance(500);
    let length = duration_us(rng);
    let end_at = (started + TimeDelta::microseconds(length)).min(now);
    let mut events = vec![Event::SessionStart(start)];
    let commands = if ended { rng.below(5) } else { rng.below(3) };
    let window = if ended {
        (end_at - started).num_microseconds().unwrap_or(0)
    } else {
        (now - started)
            .num_microseconds()
            .unwrap_or(0)
            .min(600_000_000)
    };
    for seq in 1..=commands {
        let ok = !rng.chance(80);
        let at = started + TimeDelta::microseconds(window * seq as i64 / (commands as i64 + 1));
        events.push(Event::Command(CommandEvent {
            event_version: "1.1".into(),
            event_id: rng.uuid(rng.0 & 0xff_ffff),
            event_type: EventType::Command,
            session_id: session_id.clone(),
            timestamp: at,
            seq,
            command: HELPERS[rng.below(HELPERS.len() as u64) as usize].into(),
            args: None,
            success: ok,
            exit_code: Some(if ok { 0 } else { 1 }),
            duration_ms: Some(rng.below(5000) as f64),
            error: (!ok).then(|| ERRORS[rng.below(ERRORS.len() as u64) as usize].to_string()),
        }));
    }
    if ended {
        let (exit_code, signal, reason) = match rng.below(100) {
            0..=89 => (Some(0), None, "exit"),
            90..=94 => (Some(1), None, "error"),
            95..=97 => (None, Some("SIGTERM".to_string()), "sigterm"),
            _ => (Some(0), None, "eof"),
        };
        events.push(Event::SessionEnd(SessionEndEvent {
            event_version: Some("1.1".into()),
            event_id: Some(rng.uuid(rng.0 & 0xff_ffff)),
            event_type: EventType::SessionEnd,
            session_id,
            timestamp: end_at,
            metadata: Map::new(),
            exit_code,
            signal,
            reason: Some(reason.into()),
        }));
    }
    Seeded {
        events,
        abandon: !ended && rng.chance(ABANDONED_PER_MILLE),
    }
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    duplicate: u64,
    rejected: u64,
    first_rejection: Option<String>,
}

async fn ingest_batch(
    store: Arc<dyn Store>,
    events: Vec<Event>,
    received_at: DateTime<Utc>,
) -> anyhow::Result<Tally> {
    let outcomes = store.ingest(events, received_at).await?;
    let mut t = Tally::default();
    for o in outcomes {
        match o.status {
            EventOutcome::Accepted => t.accepted += 1,
            EventOutcome::Duplicate => t.duplicate += 1,
            EventOutcome::Rejected => {
                t.rejected += 1;
                if t.first_rejection.is_none() {
                    t.first_rejection = o.error;
                }
            }
        }
    }
    Ok(t)
}

/// Writes the dataset into `store` (described as `path` in the report) and closes it.
pub async fn seed(store: Arc<dyn Store>, path: String, args: SeedOptions) -> anyhow::Result<()> {
    if args.sessions == 0 {
        anyhow::bail!("--sessions must be at least 1");
    }
    let now = Utc::now();
    // Received two days ago: the reaper's cutoff below finds exactly these.
    let long_ago = now - TimeDelta::days(2);
    let mut rng = Rng(args.seed ^ 0x5e55_10b0_dd1e);
    let id_offset = (now.timestamp_micros() as u64).wrapping_mul(2_654_435_761) & 0xff_ffff;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut in_flight: JoinSet<anyhow::Result<Tally>> = JoinSet::new();
    let mut total = Tally::default();
    let (mut batch, mut stale) = (Vec::with_capacity(BATCH_EVENTS + 8), Vec::new());
    let mut abandon_candidates = 0u64;
    eprintln!(
        "seeding {} sessions into {} (20 components, 50 users, 30 hosts, the last 60 days)",
        args.sessions, path
    );
    let absorb = |total: &mut Tally, t: Tally| {
        total.accepted += t.accepted;
        total.duplicate += t.duplicate;
        total.rejected += t.rejected;
        if total.first_rejection.is_none() {
            total.first_rejection = t.first_rejection;
        }
    };
    for i in 0..args.sessions {
        let s = session(&mut rng, i, args.sessions, id_offset, now);
        let full = if s.abandon {
            abandon_candidates += 1;
            stale.extend(s.events);
            stale.len() >= BATCH_EVENTS
        } else {
            batch.extend(s.events);
            batch.len() >= BATCH_EVENTS
        };
        if full || i + 1 == args.sessions {
            while in_flight.len() >= IN_FLIGHT {
                if let Some(done) = in_flight.join_next().await {
                    absorb(&mut total, done??);
                }
            }
            if batch.len() >= BATCH_EVENTS || (i + 1 == args.sessions && !batch.is_empty()) {
                in_flight.spawn(ingest_batch(store.clone(), std::mem::take(&mut batch), now));
            }
            if stale.len() >= BATCH_EVENTS || (i + 1 == args.sessions && !stale.is_empty()) {
                in_flight.spawn(ingest_batch(
                    store.clone(),
                    std::mem::take(&mut stale),
                    long_ago,
                ));
            }
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  {:>9} / {} sessions  {:>7.0} sessions/s  {:>8.0} events/s",
                i + 1,
                args.sessions,
                (i + 1) as f64 / secs,
                total.accepted as f64 / secs
            );
        }
    }
    while let Some(done) = in_flight.join_next().await {
        absorb(&mut total, done??);
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let cutoff = now - TimeDelta::days(1);
    let mut abandoned = 0usize;
    loop {
        let reaped = store.reap(cutoff, cutoff).await?;
        if reaped.is_empty() {
            break;
        }
        abandoned += reaped.len();
    }
    // The analytics rollups of the hours written (the server's maintenance would do it within
    // a minute of starting; here it is timed on its own).
    let rollup_started = Instant::now();
    let mut rolled_up = 0usize;
    loop {
        let n = store.refresh_rollups(Utc::now()).await?;
        rolled_up += n;
        if n < session_buddy_store::analytics::ROLLUP_REFRESH_BATCH {
            break;
        }
    }
    let rollup_secs = rollup_started.elapsed().as_secs_f64();
    eprintln!("analytics rollups of {rolled_up} component-hours built in {rollup_secs:.1} s");
    store.close().await;
    eprintln!(
        "done in {:.1} s: {} events accepted ({:.0}/s), {} duplicate, {} rejected; {} sessions abandoned by the reaper (of {} candidates)",
        started.elapsed().as_secs_f64(),
        total.accepted,
        total.accepted as f64 / ingest_secs,
        total.duplicate,
        total.rejected,
        abandoned,
        abandon_candidates
    );
    if let Some(e) = total.first_rejection {
        eprintln!("first rejection: {e}");
    }
    println!(
        "{}",
        json!({
            "sessions": args.sessions,
            "events_accepted": total.accepted,
            "duplicate": total.duplicate,
            "rejected": total.rejected,
            "abandoned": abandoned,
            "rollup_hours": rolled_up,
            "rollup_seconds": (rollup_secs * 10.0).round() / 10.0,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "database": path,
        })
    );
    Ok(())
}
