//! What delivery came to, classified once: the sender records a [`DeliveryOutcome`] in the
//! buffer's state after every call, and every face (the banner, the shells' `status`,
//! `event-buffer status|replay`, mahavishnu's `sync`) shows these words.

use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use serde::{Deserialize, Serialize};

use crate::buffer::{Buffer, DeliveryRecord};
use crate::config::TrackerConfig;

/// What to do when the server refuses the token.
pub const TOKEN_ADVICE: &str = "set SESSION_BUDDY_TOKEN to a token from `session-buddy token create --subject NAME --scope emit`";

/// The result of one call to the server, in the classes the user acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The server took the events (accepted, or already had them).
    Delivered,
    /// No usable answer: the connection failed or timed out, the server is unavailable (5xx,
    /// 429), or what answered is not a session-buddy server. Events stay buffered.
    Unreachable { error: String },
    /// The server refused the caller (401, 403): `reason` is the server's own words. Events
    /// stay buffered until a token it takes is set.
    Refused { status: u16, reason: String },
    /// The server answered but rejected `events` events (invalid ones; after
    /// [`MAX_REJECTIONS`](crate::MAX_REJECTIONS) they are dead letters).
    Rejected { events: u64, error: String },
    /// No call can be made: the client's configuration is wrong (the URL, the CA file).
    Misconfigured { error: String },
}

impl DeliveryOutcome {
    /// A short name for scripts: `delivered`, `unreachable`, `refused`, `rejected`,
    /// `misconfigured` (the `kind` of the JSON form).
    pub fn kind(&self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Unreachable { .. } => "unreachable",
            DeliveryOutcome::Refused { .. } => "refused",
            DeliveryOutcome::Rejected { .. } => "rejected",
            DeliveryOutcome::Misconfigured { .. } => "misconfigured",
        }
    }

    /// Whether the server took the call (delivery works, whatever it thought of some events).
    pub fn answered(&self) -> bool {
        matches!(
            self,
            DeliveryOutcome::Delivered | DeliveryOutcome::Rejected { .. }
        )
    }

    /// The outcome of an HTTP answer that is neither a success nor about the request's body
    /// (400, 413): refused for 401/403, else unreachable. `body` is the answer's text.
    pub(crate) fn from_failed_answer(status: u16, body: &str) -> Self {
        let reason = error_message(body);
        match status {
            401 | 403 => DeliveryOutcome::Refused { status, reason },
            _ => DeliveryOutcome::Unreachable {
                error: format!("HTTP {status}: {reason}"),
            },
        }
    }

    /// The outcome in one sentence, with what to do about it.
    pub fn describe(&self) -> String {
        match self {
            DeliveryOutcome::Delivered => "delivered".to_string(),
            DeliveryOutcome::Unreachable { error } => format!(
                "server unreachable ({error}); the events stay buffered and are sent when it answers"
            ),
            DeliveryOutcome::Refused { status, reason } => {
                format!("the server refused the token (HTTP {status}: {reason}); {TOKEN_ADVICE}")
            }
            DeliveryOutcome::Rejected { events, error } => format!(
                "the server rejected {} ({error}); rejected {} times an event is kept as a dead \
                 letter: `session-buddy event-buffer list --dead-letters`",
                plural(*events, "event"),
                crate::MAX_REJECTIONS
            ),
            DeliveryOutcome::Misconfigured { error } => format!("cannot send: {error}"),
        }
    }
}

/// The `error` of the server's JSON error body, else the start of the text.
pub(crate) fn error_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

pub use session_buddy_text::ago;

/// A local time of day, with the date when it is not today.
fn clock(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let (t, now) = (t.with_timezone(&Local), now.with_timezone(&Local));
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

impl DeliveryRecord {
    /// The last recorded result with its age, in the banner's words, e.g. `connected, 3 min
    /// ago` or `buffering: server unreachable since 10:42, last tried 1 min ago`.
    pub fn summary(&self, now: DateTime<Utc>) -> String {
        let age = ago(self.at, now);
        let since = clock(self.failing_since.unwrap_or(self.at), now);
        match &self.outcome {
            DeliveryOutcome::Delivered => format!("connected, {age}"),
            DeliveryOutcome::Rejected { events, error } => format!(
                "connected, {age}; the server rejected {} ({error})",
                plural(*events, "event")
            ),
            DeliveryOutcome::Unreachable { .. } => {
                format!("buffering: server unreachable since {since}, last tried {age}")
            }
            DeliveryOutcome::Refused { status, reason } => format!(
                "buffering: the server refused the token since {since} (HTTP {status}: \
                 {reason}), last tried {age}; {TOKEN_ADVICE}"
            ),
            DeliveryOutcome::Misconfigured { error } => {
                format!("buffering: cannot send since {since}: {error}")
            }
        }
    }
}

/// The banner's tracking words, from the last delivery result recorded in the buffer, with
/// its age (never a network call).
pub fn banner_state(config: &TrackerConfig) -> String {
    if !config.enabled {
        return format!("✗ Disabled ({})", config.disabled_words());
    }
    let record = Buffer::open(&config.home, config.limits).and_then(|b| b.last_delivery());
    let pin = config
        .tracking_pin
        .as_ref()
        .map(|p| format!("{p}; "))
        .unwrap_or_default();
    match record {
        Err(e) => format!("✗ Disabled ({e})"),
        Ok(None) => format!("✓ Enabled ({pin}nothing sent yet)"),
        Ok(Some(r)) => format!("✓ Enabled ({pin}{})", r.summary(Utc::now())),
    }
}

/// What one bounded call to the server says now ([`check_server`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    /// `Delivered`: the server answers and takes this client's calls (and its token, if it
    /// checks tokens); otherwise why events would not be delivered now.
    pub outcome: DeliveryOutcome,
    /// Whether a token was sent.
    pub token_sent: bool,
    pub elapsed: Duration,
}

impl ServerCheck {
    /// One line for `status`.
    pub fn describe(&self) -> String {
        let ms = self.elapsed.as_millis();
        match &self.outcome {
            DeliveryOutcome::Delivered if self.token_sent => {
                format!("answers and takes the token ({ms} ms)")
            }
            DeliveryOutcome::Delivered => format!("answers ({ms} ms; no token set)"),
            other => other.describe(),
        }
    }
}

/// Asks the server now, in one call bounded by `timeout`, whether it would take this client's
/// events: an empty `POST /v1/events`. The server checks the token (and its `emit` scope)
/// before it reads the body, so a 401/403 is a refused token, and its answer about the empty
/// body means the call would go through. Nothing is recorded or sent.
pub fn check_server(config: &TrackerConfig, timeout: Duration) -> ServerCheck {
    let started = Instant::now();
    let outcome = probe(config, timeout);
    ServerCheck {
        outcome,
        token_sent: config.token.is_some(),
        elapsed: started.elapsed(),
    }
}

fn probe(config: &TrackerConfig, timeout: Duration) -> DeliveryOutcome {
    let agent = crate::http::ServerAgent::new(config.ca_cert.as_deref(), timeout, timeout);
    let base = config.url.trim_end_matches('/');
    if let Err(error) = agent.usable_for(base) {
        return DeliveryOutcome::Misconfigured { error };
    }
    let mut request = agent
        .agent
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/json");
    if let Some(token) = &config.token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = match request.send("[]".as_bytes()) {
        Ok(r) => r,
        Err(e) => {
            return DeliveryOutcome::Unreachable {
                error: e.to_string(),
            };
        }
    };
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let is_ours = serde_json::from_str::<serde_json::Value>(&text).is_ok();
    match status {
        200..=299 | 400 if is_ours => DeliveryOutcome::Delivered,
        200..=299 | 400 => DeliveryOutcome::Unreachable {
            error: format!("HTTP {status} that is not session-buddy's; check SESSION_BUDDY_URL"),
        },
        _ => DeliveryOutcome::from_failed_answer(status, &text),
    }
}
