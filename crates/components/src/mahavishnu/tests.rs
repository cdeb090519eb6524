//! Unit tests of `mahavishnu`.

use super::*;
use crate::reading::testdata::*;

#[test]
fn hostname_prefers_proc_then_env() {
    assert_eq!(
        choose_hostname(Some("box-1\n".into()), Some("env".into())),
        Some("box-1".into())
    );
    assert_eq!(
        choose_hostname(Some(" \n".into()), Some("env".into())),
        Some("env".into())
    );
    assert_eq!(choose_hostname(None, None), None);
}

#[test]
fn our_own_pid_is_alive_and_an_impossible_one_is_not() {
    assert_eq!(pid_state(std::process::id()), PidState::Alive);
    // Above the kernel's pid limit (4194304): never a live process.
    assert_eq!(pid_state(4_194_305), PidState::Gone);
    assert_eq!(pid_state(0), PidState::Gone);
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(pid_state_in(empty.path(), 1), PidState::Unknown);
}

#[test]
fn host_shells_keep_this_hosts_active_sessions_and_flag_stale_ones() {
    let mut other_host = running("o-1", "akosha", 0);
    other_host.hostname = "host-b".into();
    let mut dead = running("d-1", "akosha", 5);
    dead.pid = 999;
    let sessions = vec![
        running("a-1", "oneiric", 10),
        dead,
        other_host,
        session("e-1", "akosha", 1, 10.0),
    ];
    let shells = host_shells(&sessions, "host-a", |pid| {
        if pid == 999 {
            PidState::Gone
        } else {
            PidState::Alive
        }
    });
    let ids: Vec<&str> = shells
        .iter()
        .map(|h| h.session.session_id.as_str())
        .collect();
    assert_eq!(ids, ["d-1", "a-1"]);
    assert!(shells[0].stale());
    assert!(!shells[1].stale());

    let text = render_ps(&shells, "host-a", Some("a-1"), at(20), &Utc);
    assert!(
        text.starts_with("2 tracked shells active on host-a: 1 alive, 1 stale."),
        "{text}"
    );
    assert!(text.contains("STALE: process gone"), "{text}");
    assert!(text.contains("this shell"), "{text}");
    assert!(!text.contains("not on the server yet"), "{text}");
    let text = render_ps(&[], "host-a", Some("x-1"), at(20), &Utc);
    assert!(text.contains("No tracked shells active on host-a."));
    assert!(text.contains("This shell (x-1) is not on the server yet"));
}

#[test]
fn top_ranks_by_sessions_then_commands() {
    let mut a1 = session("a-1", "akosha", 0, 60.0);
    a1.command_count = 5;
    a1.error_count = 1;
    let mut a2 = session("a-2", "akosha", 1, 30.0);
    a2.username = "bob".into();
    let mut o1 = session("o-1", "oneiric", 2, 10.0);
    o1.command_count = 9;
    let mut o2 = running("o-2", "oneiric", 3);
    o2.command_count = 1;
    o2.error_count = 1;
    let mut c1 = session("c-1", "crackerjack", 4, 1.0);
    c1.command_count = 50;
    let sessions = vec![a1, a2, o1, o2, c1];
    let now = at(13); // o-2 has run for 10 minutes.
    let comps = activity_by(&sessions, |s| &s.component, now);
    let names: Vec<&str> = comps.iter().map(|a| a.name.as_str()).collect();
    // akosha and oneiric tie on 2 sessions; oneiric has more commands.
    assert_eq!(names, ["oneiric", "akosha", "crackerjack"]);
    assert_eq!(
        (comps[0].sessions, comps[0].commands, comps[0].errors),
        (2, 10, 1)
    );
    assert!((comps[0].duration_secs - 610.0).abs() < 1e-6);
    assert!((comps[1].duration_secs - 90.0).abs() < 1e-6);
    let users = activity_by(&sessions, |s| &s.username, now);
    assert_eq!(
        users
            .iter()
            .map(|u| (u.name.as_str(), u.sessions))
            .collect::<Vec<_>>(),
        [("alice", 4), ("bob", 1)]
    );
    let text = render_top(&sessions, 2, now);
    assert!(text.contains("Components (top 2 of 3)"), "{text}");
    assert!(!text.contains("crackerjack"), "{text}");
}

#[test]
fn component_comes_from_the_id_rule() {
    assert_eq!(
        component_from_session_id("session-buddy-20260206-220500-4e5d6c"),
        Some("session-buddy")
    );
    assert_eq!(
        component_from_session_id("session-buddy-20260206-220500-a716446655440000"),
        Some("session-buddy")
    );
    assert_eq!(
        component_from_session_id("x-20260206-123456-a71644665544"),
        None
    );
    assert_eq!(component_from_session_id("oneiric-20260206-123456"), None);
    assert_eq!(component_from_session_id("x-20260206-123456-zzzzzz"), None);
    assert_eq!(component_from_session_id("s-1"), None);
}

#[test]
fn failed_commands_newest_first_with_details() {
    let events = vec![
        command(
            "akosha-20260206-120000-abcdef",
            1,
            "search",
            "foo",
            Some("no match"),
        ),
        command("akosha-20260206-120000-abcdef", 2, "graph", "", None),
        command("legacy-id", 5, "detect", "--all", Some("timeout")),
        command(
            "oneiric-20260206-120100-000001",
            3,
            "validate_config",
            "",
            Some("bad"),
        ),
    ];
    let f = failed_commands(&events, 10);
    assert_eq!(f.len(), 3);
    assert_eq!(
        (
            f[0].command.as_str(),
            f[0].component.as_deref(),
            f[0].args.as_str()
        ),
        ("detect", None, "--all")
    );
    assert_eq!(f[1].component.as_deref(), Some("oneiric"));
    assert_eq!(f[2].error.as_deref(), Some("no match"));
    assert_eq!(f[2].component.as_deref(), Some("akosha"));
    assert_eq!(failed_commands(&events, 1).len(), 1);
    let text = render_errors(&f, 4, &Utc);
    assert!(
        text.starts_with("The latest 3 failed commands, newest first (from all 4 command events)"),
        "{text}"
    );
    assert!(text.contains("2026-02-06 12:05:00  legacy-id"), "{text}");
    assert_eq!(
        render_errors(&[], 1000, &Utc),
        "No failed commands among the latest 1000 command events.\n"
    );
}

#[test]
fn sync_reports_and_fails_when_events_are_left() {
    let ok = session_buddy_client::DeliveryReport {
        delivered: 7,
        duplicates: 1,
        remaining: 0,
        ..Default::default()
    };
    let (text, failure) = render_sync(&ok);
    assert!(failure.is_none());
    assert!(text.contains("delivered      7"), "{text}");
    assert!(text.contains("Sync complete"), "{text}");
    let stuck = session_buddy_client::DeliveryReport {
        remaining: 3,
        error: Some("connection refused".into()),
        ..Default::default()
    };
    let (text, failure) = render_sync(&stuck);
    assert!(text.contains("connection refused"));
    assert_eq!(
        failure.as_deref(),
        Some(
            "delivery stopped: connection refused; 3 events still queued (the background sender keeps trying)"
        )
    );
}
