//! `search`: case-insensitive text over sessions (fields and metadata) and command events.

use std::fmt::{Display, Write as _};

use chrono::TimeZone;
use serde_json::Value;
use session_buddy_events::{Session, StoredEvent};

use crate::reading::{MAX_EVENTS, clip, command_view, local_time};

/// A session with the fields where the text was found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionHit<'a> {
    pub session: &'a Session,
    /// (field, value) pairs, e.g. `("metadata.role", "Diviner")`.
    pub fields: Vec<(String, String)>,
}

/// A command event with the fields where the text was found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandHit<'a> {
    pub event: &'a StoredEvent,
    pub fields: Vec<(String, String)>,
}

fn contains(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

/// Sessions whose id, component, user, host, cwd, shell type, end reason or metadata (keys
/// or values) contain `needle`, ignoring case.
pub(crate) fn search_sessions<'a>(sessions: &'a [Session], needle: &str) -> Vec<SessionHit<'a>> {
    let needle = needle.to_lowercase();
    sessions
        .iter()
        .filter_map(|s| {
            let mut fields: Vec<(String, String)> = [
                ("session_id", Some(&s.session_id)),
                ("component", Some(&s.component)),
                ("user", Some(&s.username)),
                ("host", Some(&s.hostname)),
                ("cwd", Some(&s.cwd)),
                ("shell_type", Some(&s.shell_type)),
                ("end_reason", s.end_reason.as_ref()),
            ]
            .into_iter()
            .filter_map(|(name, v)| {
                let v = v?;
                contains(v, &needle).then(|| (name.to_string(), v.clone()))
            })
            .collect();
            for (k, v) in &s.metadata {
                search_json(v, &format!("metadata.{k}"), k, &needle, &mut fields);
            }
            (!fields.is_empty()).then_some(SessionHit { session: s, fields })
        })
        .collect()
}

/// Where `needle` occurs in `value` (a key or a scalar), as `(path, value)` pairs.
fn search_json(
    value: &Value,
    path: &str,
    key: &str,
    needle: &str,
    hits: &mut Vec<(String, String)>,
) {
    match value {
        Value::Object(map) => {
            if contains(key, needle) {
                hits.push((path.to_string(), clip(&value.to_string(), 80)));
            }
            for (k, v) in map {
                search_json(v, &format!("{path}.{k}"), k, needle, hits);
            }
        }
        Value::Array(items) => {
            if contains(key, needle) {
                hits.push((path.to_string(), clip(&value.to_string(), 80)));
            }
            for (i, v) in items.iter().enumerate() {
                search_json(v, &format!("{path}[{i}]"), "", needle, hits);
            }
        }
        scalar => {
            let text = match scalar {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if contains(&text, needle) || contains(key, needle) {
                hits.push((path.to_string(), clip(&text, 80)));
            }
        }
    }
}

/// Command events whose command, args or error contain `needle`, ignoring case; the newest
/// first.
pub(crate) fn search_commands<'a>(events: &'a [StoredEvent], needle: &str) -> Vec<CommandHit<'a>> {
    let needle = needle.to_lowercase();
    let mut hits: Vec<CommandHit<'a>> = events
        .iter()
        .filter_map(|e| {
            let c = command_view(e)?;
            let fields: Vec<(String, String)> = [
                ("command", Some(c.command)),
                ("args", Some(c.args)),
                ("error", c.error),
            ]
            .into_iter()
            .filter_map(|(name, v)| {
                let v = v?;
                contains(v, &needle).then(|| (name.to_string(), v.to_string()))
            })
            .collect();
            (!fields.is_empty()).then_some(CommandHit { event: e, fields })
        })
        .collect();
    hits.sort_by(|a, b| {
        b.event
            .timestamp
            .cmp(&a.event.timestamp)
            .then_with(|| a.event.event_id.cmp(&b.event.event_id))
    });
    hits
}

/// How many hits of each kind `search` prints.
const SHOWN_HITS: usize = 50;

pub(super) fn render_search<Tz: TimeZone>(
    needle: &str,
    sessions: &[Session],
    events: &[StoredEvent],
    tz: &Tz,
) -> String
where
    Tz::Offset: Display,
{
    let session_hits = search_sessions(sessions, needle);
    let command_hits = search_commands(events, needle);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Sessions matching '{needle}': {} of {} searched",
        session_hits.len(),
        sessions.len()
    );
    for h in session_hits.iter().take(SHOWN_HITS) {
        let s = h.session;
        let _ = writeln!(
            out,
            "  {}  {}  {}@{}  {}  {}",
            s.session_id,
            s.component,
            s.username,
            s.hostname,
            s.status,
            local_time(s.started_at, tz)
        );
        for (field, value) in &h.fields {
            let _ = writeln!(out, "      {field}: {value}");
        }
    }
    if session_hits.len() > SHOWN_HITS {
        let _ = writeln!(out, "  … and {} more", session_hits.len() - SHOWN_HITS);
    }
    let scope = if events.len() >= MAX_EVENTS {
        format!("the latest {} command events", events.len())
    } else {
        format!("{} command events", events.len())
    };
    let _ = writeln!(
        out,
        "Commands matching '{needle}': {} of {scope}",
        command_hits.len()
    );
    for h in command_hits.iter().take(SHOWN_HITS) {
        let e = h.event;
        let (name, ok) = command_view(e)
            .map(|c| (c.command, c.success))
            .unwrap_or(("?", true));
        let _ = writeln!(
            out,
            "  {}  {}  {name}  {}",
            local_time(e.timestamp, tz),
            e.session_id,
            if ok { "ok" } else { "failed" }
        );
        for (field, value) in &h.fields {
            let _ = writeln!(out, "      {field}: {}", clip(value, 100));
        }
    }
    if command_hits.len() > SHOWN_HITS {
        let _ = writeln!(out, "  … and {} more", command_hits.len() - SHOWN_HITS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;
    use chrono::Utc;
    use serde_json::json;

    #[test]
    fn search_finds_fields_metadata_and_commands() {
        let mut s1 = session("akosha-1", "akosha", 0, 1.0);
        s1.cwd = "/srv/Payments".into();
        s1.metadata.insert("role".into(), json!("Diviner"));
        s1.metadata
            .insert("tags".into(), json!(["blue", "payments-team"]));
        let mut s2 = session("oneiric-1", "oneiric", 1, 1.0);
        s2.metadata.insert("payments".into(), json!({"on": true}));
        let s3 = session("other-1", "other", 2, 1.0);
        let sessions = vec![s1, s2, s3];

        let hits = search_sessions(&sessions, "PAYMENTS");
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].session.session_id, "akosha-1");
        assert_eq!(
            hits[0].fields,
            vec![
                ("cwd".to_string(), "/srv/Payments".to_string()),
                ("metadata.tags[1]".to_string(), "payments-team".to_string()),
            ]
        );
        assert_eq!(
            hits[1].fields,
            vec![("metadata.payments".to_string(), "{\"on\":true}".to_string())]
        );
        assert_eq!(
            search_sessions(&sessions, "diviner")[0].fields[0].0,
            "metadata.role"
        );
        assert!(search_sessions(&sessions, "no such text").is_empty());

        let events = vec![
            command("akosha-1", 0, "search", "payments", None),
            command("akosha-1", 1, "detect", "", Some("Payments DB timeout")),
            command("akosha-1", 2, "graph", "", None),
        ];
        let c = search_commands(&events, "payments");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].fields,
            vec![("error".to_string(), "Payments DB timeout".to_string())],
            "newest first"
        );
        assert_eq!(
            c[1].fields,
            vec![("args".to_string(), "payments".to_string())]
        );
        let text = render_search("payments", &sessions, &events, &Utc);
        assert!(
            text.contains("Sessions matching 'payments': 2 of 3 searched"),
            "{text}"
        );
        assert!(
            text.contains("Commands matching 'payments': 2 of 3 command events"),
            "{text}"
        );
        assert!(text.contains("detect  failed"), "{text}");
    }
}
