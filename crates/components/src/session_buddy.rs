//! Session-Buddy (Manager): the tracked sessions themselves, read through the server's API:
//! recent and active sessions, the quality score per component and why, and insights.
//!
//! The helpers are in `ps` (ps, active), `quality` (the server's score, shown) and `insights`;
//! the fetching and decoding they share with the other reading shells are `crate::reading`'s.
//! What computes is a pure function over `&[Session]` or `&[StoredEvent]`, so those tests need
//! no server.

mod insights;
mod ps;
mod quality;

use std::fmt::Display;

use session_buddy_shell::{Helper, ShellSpec};

// The helpers' modules (`use super::*`) share these and the reading shells' fetching and decoding.
use crate::reading::*;

pub(crate) fn spec() -> ShellSpec {
    ShellSpec {
        component: "session-buddy".into(),
        display_name: "Session-Buddy".into(),
        version: crate::VERSION.into(),
        tagline: "Session Management & Quality Monitoring".into(),
        role: "Manager".into(),
        shell_type: "SessionBuddyShell".into(),
        help_notes: String::new(),
        helpers: vec![
            Helper::new(
                "ps",
                "recent sessions: who, where, status, duration, commands, errors",
                ps::ps,
            )
            .usage("[limit]"),
            Helper::new(
                "active",
                "active sessions: how long they have been running, when last seen",
                ps::active,
            ),
            Helper::new(
                "quality",
                "quality score per component over the last 7 days, and why",
                quality::quality,
            ),
            Helper::new(
                "insights",
                "longest sessions, failing commands, abandoned sessions, busiest hours",
                insights::insights,
            )
            .usage("[limit]"),
        ],
    }
}
