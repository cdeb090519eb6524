//! Terminal recordings: `output` chunks stored once per (session, seq) under the per-session
//! cap and read back in order, whatever order they arrived in; the summary (`RecordingInfo`);
//! asciicast with its truncation marker; retention of recordings; erasing a session; the audit
//! log.

use session_buddy_events::recording::{Frame, FrameKind, parse_asciicast, truncation_marker};
use session_buddy_events::{EventOutcome, OutputEvent};
use session_buddy_store::recording::over_cap_reason;
use session_buddy_store::{AuditEntry, ChunkOutcome, Erased, PackedChunk, Store};

use super::*;

/// A cap no test reaches.
const NO_CAP: u64 = u64::MAX;
/// When every test recording began.
const STARTED: &str = "2026-03-01T10:00:00Z";

/// An `output` chunk of `session_id` (event id `uuid(n)`), cut at `timestamp`, its frames
/// `(offset, text)` of output, validated as the server validates it.
fn chunk(
    n: u64,
    session_id: &str,
    seq: u64,
    timestamp: &str,
    frames: &[(f64, &str)],
) -> OutputEvent {
    let frames: Vec<Value> = frames.iter().map(|(t, s)| json!([t, "o", s])).collect();
    let value = json!({
        "event_version": "1.1",
        "event_id": uuid(n),
        "event_type": "output",
        "session_id": session_id,
        "timestamp": timestamp,
        "seq": seq,
        "started_at": STARTED,
        "cols": 100,
        "rows": 30,
        "frames": frames,
    });
    match event(&value) {
        Event::Output(o) => o,
        other => panic!("not an output chunk: {other:?}"),
    }
}

/// Stores `chunks` in one call under `cap`.
async fn put(store: &dyn Store, chunks: &[&OutputEvent], cap: u64) -> Vec<ChunkOutcome> {
    let packed: Vec<PackedChunk> = chunks.iter().map(|c| PackedChunk::of(c)).collect();
    let outcomes = store.store_chunks(packed, cap).await.unwrap();
    assert_eq!(outcomes.len(), chunks.len(), "one outcome per chunk");
    outcomes
}

/// Every frame of `chunks`, in their order.
fn frames_of(chunks: &[&OutputEvent]) -> Vec<Frame> {
    chunks.iter().flat_map(|c| c.frames.clone()).collect()
}

/// Starts a 1.1 session of `component` (event id `uuid(n)`) at `timestamp`; its id.
async fn started_session(store: &dyn Store, component: &str, n: u64, timestamp: &str) -> String {
    accept_all(store, &[start_1_1(component, &uuid(n), timestamp)], 1)
        .await
        .remove(0)
        .session_id
}

pub async fn chunks_are_stored_once_per_seq_and_read_back_in_order(store: &dyn Store) {
    // The chunks come before the session's start (a recorder may deliver them first).
    let id = "alpha-20260301-100000-000001";
    let c1 = chunk(
        11,
        id,
        1,
        "2026-03-01T10:00:01Z",
        &[(0.0, "$ ls\r\n"), (0.5, "héllo\r\n")],
    );
    let c2 = chunk(12, id, 2, "2026-03-01T10:00:02Z", &[(1.25, "two")]);
    // Seq 10 sorts before 2 as text: the order is numeric.
    let text = "abcdefgh".repeat(1000);
    let c10 = chunk(
        13,
        id,
        10,
        "2026-03-01T10:00:05Z",
        &[(2.0, &text), (2.5, "!")],
    );
    assert_eq!(
        put(store, &[&c10, &c2], NO_CAP).await,
        [ChunkOutcome::Stored, ChunkOutcome::Stored]
    );
    // Seq 1, then seq 1 again in the same call and seq 2 again in the next: each once.
    assert_eq!(
        put(store, &[&c1, &c1], NO_CAP).await,
        [ChunkOutcome::Stored, ChunkOutcome::Duplicate]
    );
    // A resent chunk is a duplicate by (session, seq), whatever it holds.
    let c2_again = chunk(14, id, 2, "2026-03-01T10:00:09Z", &[(9.0, "other")]);
    assert_eq!(
        put(store, &[&c2, &c2_again], NO_CAP).await,
        [ChunkOutcome::Duplicate, ChunkOutcome::Duplicate]
    );

    let bytes = (c1.data_bytes() + c2.data_bytes() + c10.data_bytes()) as u64;
    assert_eq!(bytes, 6 + 8 + 3 + 8000 + 1, "data bytes count UTF-8 bytes");
    let infos = store
        .recording_infos(&[id.to_string(), "alpha-20260301-100000-0000ff".to_string()])
        .await
        .unwrap();
    assert_eq!(infos.len(), 1, "only the recorded session: {infos:?}");
    let info = &infos[0];
    assert_eq!(info.session_id, id);
    assert_eq!(info.chunks, 3, "{info:?}");
    assert_eq!(info.bytes, bytes, "{info:?}");
    assert!(
        info.stored_bytes > 0 && info.stored_bytes < info.bytes,
        "terminal output is stored deflated: {info:?}"
    );
    assert_eq!(info.truncated, None);
    assert_eq!(info.started_at, at(STARTED));
    assert_eq!((info.cols, info.rows), (100, 30));
    assert_eq!(
        info.last_at,
        at("2026-03-01T10:00:05Z"),
        "the newest chunk's time"
    );

    let recording = store.recording(id).await.unwrap().expect("a recording");
    assert_eq!(&recording.info, info);
    let seqs: Vec<i64> = recording.chunks.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [1, 2, 10]);
    let packed: u64 = recording.chunks.iter().map(|c| c.frames.len() as u64).sum();
    assert_eq!(
        packed, info.stored_bytes,
        "stored bytes are the packed frames"
    );
    // Each chunk reads back as the event it came in as (the first of a seq wins).
    for (stored, sent) in recording.chunks.iter().zip([&c1, &c2, &c10]) {
        assert_eq!(&stored.to_event().unwrap(), sent);
    }
    let (header, frames) = parse_asciicast(&recording.to_asciicast().unwrap()).unwrap();
    assert_eq!((header.version, header.width, header.height), (2, 100, 30));
    assert_eq!(header.timestamp, Some(at(STARTED).timestamp()));
    assert_eq!(header.duration, Some(2.5));
    assert_eq!(frames, frames_of(&[&c1, &c2, &c10]));

    // The start arrives: the session shows its recording; one without chunks does not.
    let out = ingest_one(store, &start_1_1("alpha", &uuid(1), STARTED), 2).await;
    assert_eq!(
        (out.status, out.session_id.as_str()),
        (EventOutcome::Accepted, id)
    );
    let other = started_session(store, "beta", 2, "2026-03-01T11:00:00Z").await;
    assert!(session(store, id).await.has_recording);
    assert!(!session(store, &other).await.has_recording);
    let page = store.list_sessions(all()).await.unwrap();
    let flags: Vec<(String, bool)> = page
        .sessions
        .into_iter()
        .map(|s| (s.session_id, s.has_recording))
        .collect();
    assert_eq!(flags, [(other.clone(), false), (id.to_string(), true)]);
    assert!(store.recording(&other).await.unwrap().is_none());
    assert!(
        store
            .recording_infos(std::slice::from_ref(&other))
            .await
            .unwrap()
            .is_empty()
    );
    // A recording is no session event: the timeline holds the start only.
    assert_eq!(store.session_events(id).await.unwrap().len(), 1);
}

pub async fn an_output_chunk_given_to_ingest_is_rejected(store: &dyn Store) {
    let id = started_session(store, "alpha", 1, STARTED).await;
    let value = serde_json::to_value(chunk(11, &id, 1, STARTED, &[(0.0, "x")])).unwrap();
    let out = ingest_one(store, &value, 2).await;
    assert_eq!(out.status, EventOutcome::Rejected, "{out:?}");
    assert!(
        out.error
            .as_deref()
            .unwrap_or_default()
            .starts_with("event_type:"),
        "{out:?}"
    );
    assert!(out.effects.is_empty(), "{out:?}");
    assert!(store.recording(&id).await.unwrap().is_none());
    assert_eq!(store.session_events(&id).await.unwrap().len(), 1);
    assert!(!session(store, &id).await.has_recording);
}

pub async fn the_chunk_past_the_cap_truncates_the_recording(store: &dyn Store) {
    const CAP: u64 = 100;
    let id = started_session(store, "alpha", 1, STARTED).await;
    let sixty = "a".repeat(60);
    let forty = "b".repeat(40);
    let c1 = chunk(11, &id, 1, "2026-03-01T10:00:01Z", &[(0.0, &sixty)]);
    let c2 = chunk(
        12,
        &id,
        2,
        "2026-03-01T10:00:02Z",
        &[(0.5, &forty[..30]), (0.75, &forty[30..])],
    );
    let c3 = chunk(13, &id, 3, "2026-03-01T10:00:03Z", &[(1.0, "c")]);
    // 60, then exactly the cap: stored; one byte past it: not.
    let other = started_session(store, "beta", 9, STARTED).await;
    let first = chunk(21, &other, 1, "2026-03-01T10:00:01Z", &[(0.0, &sixty)]);
    let big = chunk(
        22,
        &other,
        2,
        "2026-03-01T10:00:02Z",
        &[(0.5, &"x".repeat(50))],
    );
    let small = chunk(23, &other, 3, "2026-03-01T10:00:03Z", &[(1.0, "y")]);
    // Once the cap has ended a recording, a later chunk that would fit is refused too: no gap.
    assert_eq!(
        put(store, &[&first, &big, &small], CAP).await,
        [
            ChunkOutcome::Stored,
            ChunkOutcome::OverCap,
            ChunkOutcome::OverCap
        ]
    );
    assert_eq!(
        store.recording_infos(&[other]).await.unwrap()[0].chunks,
        1,
        "only the chunk before the cap"
    );
    assert_eq!(
        put(store, &[&c1, &c2, &c3], CAP).await,
        [
            ChunkOutcome::Stored,
            ChunkOutcome::Stored,
            ChunkOutcome::OverCap
        ]
    );
    // Sent again it is still over the cap (it was never stored, so it is no duplicate); the
    // chunks that were stored stay duplicates.
    assert_eq!(
        put(store, &[&c3, &c2], CAP).await,
        [ChunkOutcome::OverCap, ChunkOutcome::Duplicate]
    );
    let reason = over_cap_reason(CAP);
    let recording = store.recording(&id).await.unwrap().expect("a recording");
    let info = &recording.info;
    assert_eq!(info.truncated.as_deref(), Some(reason.as_str()), "{info:?}");
    assert_eq!((info.chunks, info.bytes), (2, CAP), "{info:?}");
    assert_eq!(
        recording.chunks.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    let cast = recording.to_asciicast().unwrap();
    let marker_line = format!(
        "[0.75, \"o\", {}]",
        serde_json::to_string(&truncation_marker(&reason)).unwrap()
    );
    assert_eq!(
        cast.lines().last(),
        Some(marker_line.as_str()),
        "the cast ends with the marker"
    );
    let (header, mut frames) = parse_asciicast(&cast).unwrap();
    assert_eq!(header.version, 2);
    assert!(header.title.unwrap_or_default().contains("truncated"));
    let marker = frames.pop().expect("the marker frame");
    assert_eq!(
        marker,
        Frame(0.75, FrameKind::Output, truncation_marker(&reason))
    );
    assert_eq!(frames, frames_of(&[&c1, &c2]), "the stored frames' text");
    assert!(session(store, &id).await.has_recording);

    // A cap the first chunk already passes: nothing is stored, the recording says why.
    let other = started_session(store, "beta", 2, "2026-03-01T11:00:00Z").await;
    let big = chunk(21, &other, 1, "2026-03-01T11:00:01Z", &[(0.0, &sixty)]);
    assert_eq!(put(store, &[&big], 10).await, [ChunkOutcome::OverCap]);
    let infos = store
        .recording_infos(std::slice::from_ref(&other))
        .await
        .unwrap();
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert_eq!((infos[0].chunks, infos[0].bytes), (0, 0), "{infos:?}");
    assert_eq!(infos[0].truncated, Some(over_cap_reason(10)));
    let empty = store.recording(&other).await.unwrap().expect("a recording");
    assert!(empty.chunks.is_empty());
    let (_, frames) = parse_asciicast(&empty.to_asciicast().unwrap()).unwrap();
    assert_eq!(
        frames,
        [Frame(
            0.0,
            FrameKind::Output,
            truncation_marker(&over_cap_reason(10))
        )]
    );
}

pub async fn a_recorder_truncation_is_kept_and_shown(store: &dyn Store) {
    let id = started_session(store, "alpha", 1, STARTED).await;
    let c1 = chunk(11, &id, 1, "2026-03-01T10:00:01Z", &[(0.0, "one")]);
    let mut c2 = chunk(12, &id, 2, "2026-03-01T10:00:02Z", &[(1.5, "two")]);
    c2.truncated = Some("the recorder's buffer quota".into());
    // The last chunk first: the truncation stays when the earlier one comes after it.
    assert_eq!(
        put(store, &[&c2, &c1], NO_CAP).await,
        [ChunkOutcome::Stored, ChunkOutcome::Stored]
    );
    let recording = store.recording(&id).await.unwrap().expect("a recording");
    assert_eq!(
        recording.info.truncated.as_deref(),
        Some("the recorder's buffer quota")
    );
    assert_eq!(recording.chunks[1].to_event().unwrap(), c2);
    let (_, frames) = parse_asciicast(&recording.to_asciicast().unwrap()).unwrap();
    let mut expected = frames_of(&[&c1, &c2]);
    expected.push(Frame(
        1.5,
        FrameKind::Output,
        truncation_marker("the recorder's buffer quota"),
    ));
    assert_eq!(frames, expected);
    // A later cap leaves the first reason.
    let c3 = chunk(13, &id, 3, "2026-03-01T10:00:03Z", &[(2.0, "three")]);
    assert_eq!(put(store, &[&c3], 6).await, [ChunkOutcome::OverCap]);
    let infos = store.recording_infos(&[id]).await.unwrap();
    assert_eq!(
        infos[0].truncated.as_deref(),
        Some("the recorder's buffer quota")
    );
}

fn erase_entry(session_id: &str, at_text: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: at(at_text),
        actor: "root (token 1234)".into(),
        action: "session.erase".into(),
        session_id: Some(session_id.to_string()),
        detail: None,
    }
}

pub async fn erase_session_removes_the_session_its_events_and_its_recording(store: &dyn Store) {
    let a = started_session(store, "alpha", 1, STARTED).await;
    let b = started_session(store, "beta", 2, "2026-03-01T11:00:00Z").await;
    let mut deploy = command(&uuid(3), &a, "2026-03-01T10:00:10Z", 1, true);
    deploy["command"] = json!("deploy_release");
    accept_all(
        store,
        &[
            deploy,
            end_1_1(&uuid(4), &a, "2026-03-01T10:05:00Z"),
            command(&uuid(5), &b, "2026-03-01T11:00:10Z", 1, false),
        ],
        2,
    )
    .await;
    let a1 = chunk(11, &a, 1, "2026-03-01T10:00:01Z", &[(0.0, "a1")]);
    let a2 = chunk(12, &a, 2, "2026-03-01T10:00:02Z", &[(1.0, "a2")]);
    let b1 = chunk(13, &b, 1, "2026-03-01T11:00:01Z", &[(0.0, "b1")]);
    // A session known only by a pending command and a chunk (its start never came).
    let pending = "gamma-20260301-120000-0000cc";
    accept_all(
        store,
        &[command(&uuid(6), pending, "2026-03-01T12:00:01Z", 1, true)],
        3,
    )
    .await;
    let p1 = chunk(14, pending, 1, "2026-03-01T12:00:01Z", &[(0.0, "p1")]);
    put(store, &[&a1, &a2, &b1, &p1], NO_CAP).await;
    let search = |q: &str| SessionFilter {
        q: Some(q.into()),
        ..all()
    };
    assert_eq!(listed(store, search("deploy_rel")).await, [a.as_str()]);
    let b_before = session(store, &b).await;
    let b_events = store.session_events(&b).await.unwrap();
    assert_eq!(b_events.len(), 2);

    let erased = store
        .erase_session(&a, erase_entry(&a, "2026-06-01T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        erased,
        Erased {
            session: true,
            events: 3,
            chunks: 2
        }
    );
    assert!(store.get_session(&a).await.unwrap().is_none());
    assert!(store.session_events(&a).await.unwrap().is_empty());
    let a_filter = EventFilter {
        session_id: Some(a.clone()),
        ..all_events()
    };
    assert!(store.list_events(a_filter).await.unwrap().is_empty());
    assert!(store.recording(&a).await.unwrap().is_none());
    assert!(
        store
            .recording_infos(std::slice::from_ref(&a))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(listed(store, search("deploy_rel")).await.is_empty());
    assert_eq!(listed(store, all()).await, [b.as_str()]);
    assert_eq!(
        store.recorded_sessions(None, 10).await.unwrap(),
        [b.clone(), pending.to_string()]
    );
    // The other session is untouched.
    assert_eq!(session(store, &b).await, b_before);
    assert_eq!(store.session_events(&b).await.unwrap(), b_events);
    let b_recording = store.recording(&b).await.unwrap().expect("b's recording");
    assert_eq!(b_recording.chunks.len(), 1);
    assert_eq!(b_recording.chunks[0].to_event().unwrap(), b1);
    // The erase is in the audit log, and only the erase.
    let log = store.audit_log(Some(a.clone()), 10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].id > 0, "{log:?}");
    assert_eq!(
        log[0],
        AuditEntry {
            id: log[0].id,
            ..erase_entry(&a, "2026-06-01T12:00:00Z")
        }
    );

    // A pending session: its events and chunks go though no session row did.
    let erased = store
        .erase_session(pending, erase_entry(pending, "2026-06-01T12:01:00Z"))
        .await
        .unwrap();
    assert_eq!(
        erased,
        Erased {
            session: false,
            events: 1,
            chunks: 1
        }
    );
    assert!(store.session_events(pending).await.unwrap().is_empty());
    assert!(store.recording(pending).await.unwrap().is_none());
    // Erasing what is not there erases nothing, and the attempt is logged too.
    let unknown = "delta-20260301-130000-0000dd";
    let erased = store
        .erase_session(unknown, erase_entry(unknown, "2026-06-01T12:02:00Z"))
        .await
        .unwrap();
    assert_eq!(erased, Erased::default());
    let log = store.audit_log(None, 10).await.unwrap();
    let sessions: Vec<Option<String>> = log.iter().map(|e| e.session_id.clone()).collect();
    assert_eq!(
        sessions,
        [
            Some(unknown.to_string()),
            Some(pending.to_string()),
            Some(a.clone())
        ]
    );
    assert_eq!(
        store.recorded_sessions(None, 10).await.unwrap(),
        [b.as_str()]
    );
}

pub async fn audit_log_is_newest_first_per_session_and_limited(store: &dyn Store) {
    assert!(store.audit_log(None, 10).await.unwrap().is_empty());
    let x = "alpha-20260301-100000-000001";
    let y = "beta-20260301-110000-000002";
    let entries = [
        (
            "ann (token a)",
            "recording.play",
            Some(x),
            Some("2 chunks, 10 bytes"),
        ),
        ("bob (token b)", "recording.export", Some(y), None),
        ("local (no authentication)", "recording.play", Some(x), None),
        ("ann (token a)", "tokens.revoke", None, Some("jti 7")),
        (
            "bob (token b)",
            "recording.export",
            Some(x),
            Some("1 chunks, 3 bytes"),
        ),
    ];
    let mut sent = Vec::new();
    for (i, (actor, action, session_id, detail)) in entries.into_iter().enumerate() {
        let entry = AuditEntry {
            id: 0,
            at: at("2026-06-01T00:00:00.123456Z") + TimeDelta::seconds(i as i64),
            actor: actor.into(),
            action: action.into(),
            session_id: session_id.map(str::to_string),
            detail: detail.map(str::to_string),
        };
        store.record_audit(entry.clone()).await.unwrap();
        sent.push(entry);
    }
    let all_log = store.audit_log(None, 100).await.unwrap();
    assert_eq!(all_log.len(), 5, "{all_log:?}");
    // Newest first; ids assigned, increasing with time.
    let ids: Vec<i64> = all_log.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(ids.iter().all(|id| *id > 0), "{ids:?}");
    let without_ids: Vec<AuditEntry> = all_log
        .iter()
        .map(|e| AuditEntry { id: 0, ..e.clone() })
        .collect();
    let newest_first: Vec<AuditEntry> = sent.iter().rev().cloned().collect();
    assert_eq!(without_ids, newest_first, "every field kept to the µs");
    // A limit keeps the newest.
    let two = store.audit_log(None, 2).await.unwrap();
    assert_eq!(two, all_log[..2]);
    // Of one session: its entries only, newest first, limited the same way.
    let of_x = store.audit_log(Some(x.into()), 100).await.unwrap();
    assert_eq!(
        of_x,
        [all_log[0].clone(), all_log[2].clone(), all_log[4].clone()]
    );
    assert_eq!(
        store.audit_log(Some(x.into()), 1).await.unwrap(),
        [all_log[0].clone()]
    );
    assert_eq!(
        store.audit_log(Some(y.into()), 100).await.unwrap(),
        [all_log[3].clone()]
    );
    // A session id is data, not SQL.
    assert!(
        store
            .audit_log(Some("' OR 1=1 --".into()), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn prune_recordings_deletes_only_those_whose_newest_chunk_is_older(store: &dyn Store) {
    let before = at("2026-03-10T00:00:00Z");
    let old_a = started_session(store, "alpha", 1, STARTED).await;
    let old_b = started_session(store, "beta", 2, STARTED).await;
    let mixed = started_session(store, "gamma", 3, STARTED).await;
    let edge = started_session(store, "delta", 4, STARTED).await;
    let recent = started_session(store, "omega", 5, STARTED).await;
    let chunks = [
        chunk(11, &old_a, 1, "2026-03-01T10:00:01Z", &[(0.0, "old a")]),
        chunk(12, &old_a, 2, "2026-03-02T10:00:00Z", &[(1.0, "old a 2")]),
        chunk(
            13,
            &old_b,
            1,
            "2026-03-09T23:59:59.999999Z",
            &[(0.0, "old b")],
        ),
        // Its newest chunk comes first: the newest decides, not the last to arrive.
        chunk(14, &mixed, 2, "2026-03-20T00:00:00Z", &[(5.0, "mixed new")]),
        chunk(15, &mixed, 1, "2026-03-01T10:00:01Z", &[(0.0, "mixed old")]),
        // Cut exactly at `before`: not older than it.
        chunk(16, &edge, 1, "2026-03-10T00:00:00Z", &[(0.0, "edge")]),
        chunk(17, &recent, 1, "2026-04-01T00:00:00Z", &[(0.0, "recent")]),
    ];
    let refs: Vec<&OutputEvent> = chunks.iter().collect();
    assert!(
        put(store, &refs, NO_CAP)
            .await
            .iter()
            .all(|o| *o == ChunkOutcome::Stored)
    );
    let infos = store
        .recording_infos(std::slice::from_ref(&mixed))
        .await
        .unwrap();
    assert_eq!(infos[0].last_at, at("2026-03-20T00:00:00Z"), "{infos:?}");

    // In batches of one: two old recordings, then nothing.
    assert_eq!(store.prune_recordings(before, 1).await.unwrap(), 1);
    assert_eq!(store.prune_recordings(before, 1).await.unwrap(), 1);
    assert_eq!(store.prune_recordings(before, 1).await.unwrap(), 0);
    assert_eq!(store.prune_recordings(before, 100).await.unwrap(), 0);
    let mut kept = vec![mixed.clone(), edge.clone(), recent.clone()];
    kept.sort();
    assert_eq!(store.recorded_sessions(None, 100).await.unwrap(), kept);
    for gone in [&old_a, &old_b] {
        assert!(store.recording(gone).await.unwrap().is_none(), "{gone}");
        // Only the recording went: the session and its events stay.
        let s = session(store, gone).await;
        assert!(!s.has_recording, "{s:?}");
        assert_eq!(store.session_events(gone).await.unwrap().len(), 1);
    }
    let mixed_rec = store.recording(&mixed).await.unwrap().expect("mixed kept");
    assert_eq!(
        mixed_rec.chunks.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2],
        "every chunk of a kept recording stays"
    );
    assert!(session(store, &recent).await.has_recording);
    // A later cutoff takes the rest.
    assert_eq!(
        store
            .prune_recordings(at("2026-05-01T00:00:00Z"), 100)
            .await
            .unwrap(),
        3
    );
    assert!(store.recorded_sessions(None, 100).await.unwrap().is_empty());
}

pub async fn recorded_sessions_page_in_session_id_order(store: &dyn Store) {
    // Recorded in an order that is not the ids' order; one session has no recording.
    let ids = [
        "omega-20260301-100000-000005",
        "alpha-20260301-100000-000001",
        "gamma-20260301-100000-000003",
        "beta-20260301-100000-000002",
        "delta-20260301-100000-000004",
    ];
    for (i, id) in ids.iter().enumerate() {
        let c = chunk(20 + i as u64, id, 1, "2026-03-01T10:00:01Z", &[(0.0, "x")]);
        assert_eq!(put(store, &[&c], NO_CAP).await, [ChunkOutcome::Stored]);
    }
    started_session(store, "aardvark", 9, STARTED).await;
    let mut sorted = ids.map(str::to_string).to_vec();
    sorted.sort();
    assert_eq!(store.recorded_sessions(None, 100).await.unwrap(), sorted);
    // Page by page after the previous page's last id.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.recorded_sessions(after.clone(), 2).await.unwrap();
        assert!(page.len() <= 2, "{page:?}");
        let Some(last) = page.last().cloned() else {
            break;
        };
        seen.extend(page);
        after = Some(last);
    }
    assert_eq!(seen, sorted);
    // After an id that has no recording: the ones after it.
    assert_eq!(
        store
            .recorded_sessions(Some("c".into()), 100)
            .await
            .unwrap(),
        sorted[2..]
    );
}

pub async fn pruning_a_session_removes_its_recording(store: &dyn Store) {
    let old = started_session(store, "alpha", 1, "2026-01-01T00:00:00Z").await;
    let kept = started_session(store, "beta", 2, "2026-06-01T00:00:00Z").await;
    accept_all(
        store,
        &[
            end_1_0(&old, "2026-01-01T00:10:00Z"),
            end_1_0(&kept, "2026-06-01T00:10:00Z"),
        ],
        2,
    )
    .await;
    let o = chunk(11, &old, 1, "2026-01-01T00:00:01Z", &[(0.0, "old")]);
    let k = chunk(12, &kept, 1, "2026-06-01T00:00:01Z", &[(0.0, "kept")]);
    put(store, &[&o, &k], NO_CAP).await;
    let pruned = store.prune(at("2026-03-01T00:00:00Z"), 100).await.unwrap();
    assert_eq!(pruned.sessions, 1, "{pruned:?}");
    assert!(store.recording(&old).await.unwrap().is_none());
    assert_eq!(
        store.recorded_sessions(None, 100).await.unwrap(),
        [kept.as_str()]
    );
    assert!(store.recording(&kept).await.unwrap().is_some());
}

pub async fn concurrent_chunks_neither_deadlock_nor_pass_the_cap(store: &dyn Store) {
    let x = "alpha-20260301-100000-000001";
    let y = "beta-20260301-100000-000002";
    // Two calls at once naming the same two sessions in opposite orders, round after round
    // (two servers receiving two senders' batches): every call succeeds.
    const ROUNDS: u64 = 10;
    for round in 0..ROUNDS {
        let (first, second) = (2 * round + 1, 2 * round + 2);
        let offset = round as f64;
        let x1 = chunk(1000 + 4 * round, x, first, STARTED, &[(offset, "x")]);
        let y1 = chunk(1001 + 4 * round, y, first, STARTED, &[(offset, "y")]);
        let y2 = chunk(1002 + 4 * round, y, second, STARTED, &[(offset, "Y")]);
        let x2 = chunk(1003 + 4 * round, x, second, STARTED, &[(offset, "X")]);
        let (a, b) = tokio::join!(
            store.store_chunks(vec![PackedChunk::of(&x1), PackedChunk::of(&y1)], NO_CAP),
            store.store_chunks(vec![PackedChunk::of(&y2), PackedChunk::of(&x2)], NO_CAP),
        );
        let stored = vec![ChunkOutcome::Stored; 2];
        assert_eq!(a.unwrap(), stored, "round {round}");
        assert_eq!(b.unwrap(), stored, "round {round}");
    }
    for id in [x, y] {
        let recording = store.recording(id).await.unwrap().expect("a recording");
        let seqs: Vec<i64> = recording.chunks.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=2 * ROUNDS as i64).collect::<Vec<_>>(), "{id}");
        assert_eq!(recording.info.chunks, 2 * ROUNDS, "{id}");
        assert_eq!(recording.info.bytes, 2 * ROUNDS, "{id}");
    }

    // Chunks of one session at once, each fitting the cap alone: only as many as fit together.
    let z = "gamma-20260301-100000-000003";
    let thirty = "z".repeat(30);
    let c: Vec<OutputEvent> = (1..=6)
        .map(|seq| chunk(2000 + seq, z, seq, STARTED, &[(0.0, &thirty)]))
        .collect();
    let one = |i: usize| store.store_chunks(vec![PackedChunk::of(&c[i])], 100);
    let (r0, r1, r2, r3, r4, r5) = tokio::join!(one(0), one(1), one(2), one(3), one(4), one(5));
    let outcomes: Vec<ChunkOutcome> = [r0, r1, r2, r3, r4, r5]
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let stored = outcomes
        .iter()
        .filter(|o| **o == ChunkOutcome::Stored)
        .count();
    let over = outcomes
        .iter()
        .filter(|o| **o == ChunkOutcome::OverCap)
        .count();
    assert_eq!((stored, over), (3, 3), "{outcomes:?}");
    let infos = store.recording_infos(&[z.to_string()]).await.unwrap();
    assert_eq!((infos[0].chunks, infos[0].bytes), (3, 90), "{infos:?}");
    assert_eq!(infos[0].truncated, Some(over_cap_reason(100)));
}
