//! What a new token may say: one validation for every face that mints (`token create`,
//! fastblocks' `auth mint`), with the same limits and the same messages.

use std::time::Duration;

use session_buddy_events::auth::{AUDIENCE, Claims, ISSUER, Scope, secret_problem};
use session_buddy_events::limits::COMPONENT_NAME_MAX;

/// Longest `sub` a minted token may carry, in characters.
pub const SUBJECT_MAX_CHARS: usize = 200;
/// Longest lifetime a minted token may have: ten years (of 366 days). A token that outlives
/// this should be a new token; rotation and revocation need lifetimes that end.
pub const TTL_MAX: Duration = Duration::from_secs(10 * 366 * 86_400);
/// [`TTL_MAX`] as the messages say it.
pub const TTL_MAX_TEXT: &str = "10 years";

/// A validated request for a token: who, which scopes (sorted, without repeats), bound to
/// which components (sorted, without repeats), for how long.
///
/// The binding applies to every scope the token holds: an `emit` token writes only its one
/// component's sessions (the `component` claim), a `read` token sees only its components'
/// (the `read_components` claim); an `admin` token is never bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subject: String,
    pub scopes: Vec<Scope>,
    pub components: Vec<String>,
    pub ttl: Duration,
}

/// A scope name: `emit` (or its alias `write`), `read` or `admin`.
pub fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s).ok_or_else(|| {
        format!(
            "'{}' is not a scope: use emit (alias write), read or admin",
            s.trim()
        )
    })
}

/// A token lifetime (`1h`, `30d`, …) from 1 s to [`TTL_MAX`].
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let ttl = session_buddy_events::parse_duration(s).map_err(|e| format!("--ttl: {e}"))?;
    check_ttl(ttl).map(|()| ttl)
}

fn check_ttl(ttl: Duration) -> Result<(), String> {
    if ttl < Duration::from_secs(1) || ttl > TTL_MAX {
        return Err(format!(
            "--ttl must be from 1s to {TTL_MAX_TEXT} ({}d)",
            TTL_MAX.as_secs() / 86_400
        ));
    }
    Ok(())
}

/// The secret to sign with: `value` (`SESSION_BUDDY_SECRET`) when it is set and not weak.
pub fn signing_secret(value: Option<&str>) -> Result<String, String> {
    let secret = value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        "SESSION_BUDDY_SECRET is not set; export the server's secret (at least 32 random \
         characters, e.g. `openssl rand -hex 32`)"
            .to_string()
    })?;
    match secret_problem(secret) {
        Some(problem) => Err(problem),
        None => Ok(secret.to_string()),
    }
}

impl Grant {
    /// Checks a request: a subject of 1 to [`SUBJECT_MAX_CHARS`] characters (trimmed), at
    /// least one scope, component names (letters, digits, `-`, `_`, at most 64) when bound —
    /// one for a token that emits, any number for a `read` token, none for an `admin` one —
    /// and a lifetime from 1 s to [`TTL_MAX`].
    pub fn new(
        subject: &str,
        scopes: &[Scope],
        components: &[String],
        ttl: Duration,
    ) -> Result<Self, String> {
        let subject = subject.trim();
        if subject.is_empty() {
            return Err("--subject NAME is required (who the token is for)".into());
        }
        if subject.chars().count() > SUBJECT_MAX_CHARS {
            return Err(format!(
                "--subject must be 1 to {SUBJECT_MAX_CHARS} characters"
            ));
        }
        if scopes.is_empty() {
            return Err("--scope emit|read|admin is required (repeat it for several)".into());
        }
        if let Some(c) = components
            .iter()
            .find(|c| !session_buddy_events::is_valid_name(c))
        {
            return Err(format!(
                "--component '{c}' is not a component name (letters, digits, '-' and '_', at \
                 most {COMPONENT_NAME_MAX})"
            ));
        }
        check_ttl(ttl)?;
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let mut components = components.to_vec();
        components.sort();
        components.dedup();
        if !components.is_empty() {
            if scopes.contains(&Scope::Admin) {
                return Err(
                    "--component cannot bind an admin token: admin sees and writes \
                            every component; mint an emit or read token instead"
                        .into(),
                );
            }
            if scopes.contains(&Scope::Emit) && components.len() > 1 {
                return Err(format!(
                    "an emit token is bound to one component, not {} ({}); mint one emit \
                     token per component (a read token may see several)",
                    components.len(),
                    components.join(", ")
                ));
            }
        }
        Ok(Self {
            subject: subject.to_string(),
            scopes,
            components,
            ttl,
        })
    }

    /// The claims of this grant's token, issued at `now` (Unix seconds) with id `jti`.
    pub fn claims(&self, now: i64, jti: &str) -> Claims {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        Claims {
            sub: self.subject.clone(),
            aud: AUDIENCE.into(),
            iss: Some(ISSUER.into()),
            iat: Some(now),
            exp: now.saturating_add(ttl),
            jti: jti.to_string(),
            scopes: self.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            component: if self.scopes.contains(&Scope::Emit) {
                self.components.first().cloned()
            } else {
                None
            },
            read_components: if self.scopes.contains(&Scope::Read) {
                self.components.clone()
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grants_are_checked_and_normalised() {
        let day = Duration::from_secs(86_400);
        let g = Grant::new(
            " ci ",
            &[Scope::Read, Scope::Emit, Scope::Read],
            &["crackerjack".to_string()],
            day,
        )
        .unwrap();
        assert_eq!(g.subject, "ci");
        assert_eq!(g.scopes, [Scope::Emit, Scope::Read]);
        let c = g.claims(1_000, "j");
        assert_eq!(
            (c.iat, c.exp, c.jti.as_str()),
            (Some(1_000), 1_000 + 86_400, "j")
        );
        assert_eq!(c.scopes, ["emit", "read"]);
        // Both scopes are bound.
        assert_eq!(c.component.as_deref(), Some("crackerjack"));
        assert_eq!(c.read_components, ["crackerjack"]);

        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let read = Grant::new("r", &[Scope::Read], &names(&["oneiric", "akosha"]), day)
            .unwrap()
            .claims(0, "j");
        assert_eq!(read.component, None);
        assert_eq!(read.read_components, ["akosha", "oneiric"]);
        let emit = Grant::new("e", &[Scope::Emit], &names(&["akosha"]), day)
            .unwrap()
            .claims(0, "j");
        assert_eq!(emit.component.as_deref(), Some("akosha"));
        assert!(emit.read_components.is_empty());

        let err = |s: &str, sc: &[Scope], comp: Option<&str>, ttl| {
            let comp: Vec<String> = comp.into_iter().map(str::to_string).collect();
            Grant::new(s, sc, &comp, ttl).unwrap_err()
        };
        let two = names(&["a", "b"]);
        assert!(
            Grant::new("a", &[Scope::Emit], &two, day)
                .unwrap_err()
                .contains("one component")
        );
        assert!(
            Grant::new("a", &[Scope::Admin], &names(&["a"]), day)
                .unwrap_err()
                .contains("admin")
        );
        assert!(err("", &[Scope::Read], None, day).contains("--subject NAME is required"));
        assert!(err(&"x".repeat(201), &[Scope::Read], None, day).contains("1 to 200"));
        assert!(Grant::new(&"x".repeat(200), &[Scope::Read], &[], day).is_ok());
        assert!(err("a", &[], None, day).contains("--scope"));
        assert!(err("a", &[Scope::Read], Some("a/b"), day).contains("component name"));
        assert!(err("a", &[Scope::Read], None, Duration::ZERO).contains("from 1s to 10 years"));
        assert!(Grant::new("a", &[Scope::Read], &[], TTL_MAX).is_ok());
        assert!(err("a", &[Scope::Read], None, TTL_MAX + day).contains("10 years"));
    }

    #[test]
    fn scope_ttl_and_secret_texts() {
        assert_eq!(parse_scope("write"), Ok(Scope::Emit));
        assert!(
            parse_scope("root")
                .unwrap_err()
                .contains("'root' is not a scope")
        );
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_ttl("soon").unwrap_err().starts_with("--ttl: "));
        assert!(parse_ttl("4000d").unwrap_err().contains("10 years"));
        assert!(signing_secret(None).unwrap_err().contains("is not set"));
        assert!(
            signing_secret(Some("short"))
                .unwrap_err()
                .contains("too short")
        );
        let good = "0123456789abcdef0123456789abcdef-grant";
        assert_eq!(signing_secret(Some(good)).unwrap(), good);
    }
}
