//! What a Session-Buddy token says and what it allows: claims, scopes, the component binding
//! and the rules for a signing secret. No crypto and no I/O here: `session-buddy-token` signs
//! and verifies with these types, for the server, `session-buddy token` and fastblocks alike.

use serde::{Deserialize, Serialize};

/// The `aud` every token must carry.
pub const AUDIENCE: &str = "session-buddy";
/// The `iss` our own tools put in the tokens they mint (not checked on verification).
pub const ISSUER: &str = "session-buddy";
/// Shortest secret the server accepts (the original's `MIN_SECRET_LENGTH`).
pub const MIN_SECRET_LEN: usize = 32;
/// Scope names a token may hold; `write` (the original's name) is also accepted for `emit`.
pub const SCOPE_NAMES: &[&str] = &["emit", "read", "recordings", "admin"];

/// Words a secret may not be (alone, repeated, or strung together), case-insensitive: the
/// original's placeholder list plus a few more.
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "test",
    "test-secret",
    "placeholder",
    "example",
    "none",
    "null",
    "password",
    "your-secret",
];

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send events (`POST /v1/events`, the `track_*` tools); may be bound to one component.
    Emit,
    /// Read sessions, events, analytics, schemas (and `/metrics` with `--metrics-require-auth`).
    Read,
    /// Play and export terminal recordings (`GET /v1/sessions/{id}/recording`); every read
    /// is audited. Not part of `read`, which the shells hold.
    Recordings,
    /// Everything, including administrative writes such as revoking tokens.
    Admin,
}

impl Scope {
    /// Parses a scope name; `write` is the original's name for `emit`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "emit" | "write" => Some(Self::Emit),
            "read" => Some(Self::Read),
            "recordings" => Some(Self::Recordings),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Emit => "emit",
            Self::Read => "read",
            Self::Recordings => "recordings",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of a Session-Buddy token (HS256 JWT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who holds the token, e.g. `crackerjack-ci` or a user name.
    pub sub: String,
    /// `session-buddy`, or a list holding it (both are valid JWT).
    pub aud: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Expires at, Unix seconds (required).
    pub exp: i64,
    /// The token's id: what `session-buddy token revoke` names.
    pub jti: String,
    /// Scope names as sent (`emit`, `write`, `read`, `admin`; others are ignored).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// For an `emit` token: the one component whose events it may write. It does not bind
    /// reads (tokens minted before `read_components` existed keep meaning what they meant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// For a `read` token: the components whose sessions it may see (empty: every one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_components: Vec<String>,
}

impl Claims {
    /// The scopes this token holds that we know.
    pub fn known_scopes(&self) -> Vec<Scope> {
        let mut out: Vec<Scope> = self.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether the token holds `scope` (`admin` implies every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        let held = self.known_scopes();
        held.contains(&Scope::Admin) || held.contains(&scope)
    }

    /// The component this token's events are bound to; `None` when it may write any (an
    /// unbound `emit` token, or an `admin` token, whose binding does not restrict it).
    pub fn bound_component(&self) -> Option<&str> {
        if self.allows(Scope::Admin) {
            return None;
        }
        self.component.as_deref().filter(|c| !c.is_empty())
    }

    /// The components whose sessions this token may read; `None` when it may read every one
    /// (no `read_components` claim, or an `admin` token, whose binding does not restrict it).
    /// The one rule of read visibility: the server's `visible_components` asks it.
    pub fn read_bound_components(&self) -> Option<Vec<String>> {
        if self.allows(Scope::Admin) {
            return None;
        }
        let mut bound: Vec<String> = self
            .read_components
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect();
        if bound.is_empty() {
            return None;
        }
        bound.sort();
        bound.dedup();
        Some(bound)
    }

    /// Why this token may not write an event of `component`, or `None` when it may.
    pub fn component_problem(&self, component: &str) -> Option<String> {
        let bound = self.bound_component()?;
        (bound != component).then(|| {
            format!(
                "this token may write only '{bound}' events (its component claim), not '{component}'"
            )
        })
    }
}

/// Why `secret` may not sign or verify tokens, or `None` when it may.
pub fn secret_problem(secret: &str) -> Option<String> {
    let len = secret.chars().count();
    if len < MIN_SECRET_LEN {
        return Some(format!(
            "SESSION_BUDDY_SECRET is too short ({len} characters); use at least \
             {MIN_SECRET_LEN} random characters, e.g. `openssl rand -hex 32`"
        ));
    }
    let lower = secret.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next();
    let one_char = chars.all(|c| Some(c) == first);
    let obvious = [
        "changeme",
        "change-me",
        "change_me",
        "placeholder",
        "your-secret",
    ]
    .iter()
    .any(|p| lower.contains(p));
    if one_char || obvious || made_of_placeholders(&lower) {
        return Some(
            "SESSION_BUDDY_SECRET looks like a placeholder (such as 'changeme', 'secret' or \
             'test', possibly repeated); use a random value, e.g. `openssl rand -hex 32`"
                .into(),
        );
    }
    None
}

/// Whether `lower`, without separators, is nothing but placeholder words strung together.
fn made_of_placeholders(lower: &str) -> bool {
    let strip = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | '.' | ':' | '/'))
            .collect()
    };
    let text = strip(lower);
    let words: Vec<Vec<char>> = PLACEHOLDERS.iter().map(|w| strip(w)).collect();
    // reachable[i]: text[..i] is a concatenation of words.
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for i in 0..text.len() {
        if !reachable[i] {
            continue;
        }
        for w in &words {
            if text[i..].starts_with(w) {
                reachable[i + w.len()] = true;
            }
        }
    }
    !text.is_empty() && reachable[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scopes: &[&str], component: Option<&str>) -> Claims {
        Claims {
            sub: "ci".into(),
            aud: AUDIENCE.into(),
            iss: None,
            iat: Some(0),
            exp: 1,
            jti: "j".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            component: component.map(str::to_string),
            read_components: Vec::new(),
        }
    }

    #[test]
    fn read_binding_is_its_own_claim() {
        // An old token: `component` binds its writes, never its reads.
        let old = claims(&["emit", "read"], Some("crackerjack"));
        assert_eq!(old.read_bound_components(), None);
        let mut read = claims(&["read"], None);
        read.read_components = vec!["oneiric".into(), "akosha".into(), "akosha".into()];
        assert_eq!(
            read.read_bound_components(),
            Some(vec!["akosha".to_string(), "oneiric".to_string()])
        );
        let mut admin = claims(&["admin"], None);
        admin.read_components = vec!["akosha".into()];
        assert_eq!(admin.read_bound_components(), None);
        let v = serde_json::to_value(&read).unwrap();
        assert_eq!(
            v["read_components"],
            serde_json::json!(["oneiric", "akosha", "akosha"])
        );
        let unbound = serde_json::to_value(claims(&["read"], None)).unwrap();
        assert!(unbound.get("read_components").is_none(), "{unbound}");
    }

    #[test]
    fn scopes_and_aliases() {
        assert_eq!(Scope::parse("write"), Some(Scope::Emit));
        assert_eq!(Scope::parse("EMIT"), Some(Scope::Emit));
        assert_eq!(Scope::parse("delete"), None);
        let c = claims(&["write"], None);
        assert!(c.allows(Scope::Emit) && !c.allows(Scope::Read) && !c.allows(Scope::Admin));
        let a = claims(&["admin"], Some("akosha"));
        assert!(a.allows(Scope::Emit) && a.allows(Scope::Read));
        assert_eq!(a.bound_component(), None);
        let both = claims(&["emit", "read"], None);
        assert!(both.allows(Scope::Read) && both.allows(Scope::Emit));
    }

    #[test]
    fn component_binding() {
        let c = claims(&["emit"], Some("crackerjack"));
        assert_eq!(c.component_problem("crackerjack"), None);
        let p = c.component_problem("akosha").unwrap();
        assert!(p.contains("crackerjack") && p.contains("akosha"), "{p}");
        assert_eq!(claims(&["emit"], None).component_problem("akosha"), None);
    }

    #[test]
    fn claims_round_trip_the_minted_shape() {
        let v = serde_json::json!({"aud": "session-buddy", "iss": "session-buddy", "sub": "x",
            "iat": 1, "exp": 2, "jti": "id", "scopes": ["emit"], "component": "akosha", "extra": 1});
        let c: Claims = serde_json::from_value(v).unwrap();
        assert_eq!(c.component.as_deref(), Some("akosha"));
        assert_eq!(c.known_scopes(), [Scope::Emit]);
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(secret_problem("short").unwrap().contains("too short"));
        for weak in [
            "a".repeat(40),
            "changeme".repeat(4),
            "SECRET".repeat(6),
            "test".repeat(8),
            "test-secret-test-secret-test-secret".into(),
            "Placeholder-placeholder-placeholder".into(),
            "null-null-null-null-null-null-null-null".into(),
            "none none none none none none none none".into(),
            "example_example_example_example_example".into(),
            "my-changeme-value-with-enough-characters".into(),
        ] {
            assert!(secret_problem(&weak).is_some(), "{weak} was accepted");
        }
        for good in [
            "0123456789abcdef0123456789abcdef-test",
            "kX9v2LqP0wR7sT4uY1zA3bC5dE6fG8hJ",
            "test-secret-but-then-some-random-3f9a",
        ] {
            assert_eq!(secret_problem(good), None, "{good}");
        }
    }
}
