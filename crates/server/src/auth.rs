//! Authentication and authorisation: HS256 tokens (verified by `session_buddy_token`, the one
//! mint/verify of the workspace), the scope each route and tool needs (from [`crate::routes`]),
//! the component binding of `emit` tokens, what a caller may read ([`visible_components`]),
//! revocations (cached in memory, refreshed from the store) and per-token rate limits.
//!
//! Without a secret every call is allowed (the binary then serves loopback only).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use session_buddy_events::auth::{Claims, Scope};
pub use session_buddy_token::{TokenError, TokenVerifier, mint as mint_token};

use crate::bucket::Bucket;
use crate::{AppError, AppState};

/// Longest `Authorization` value we read.
const MAX_TOKEN_BYTES: usize = 8192;
/// Server-side secrets and limits.
#[derive(Clone)]
pub struct AuthOptions {
    /// `SESSION_BUDDY_SECRET`; `None`: no authentication.
    pub secret: Option<String>,
    /// `SESSION_BUDDY_PREVIOUS_SECRET`: accepted for verification only (key rotation).
    pub previous_secret: Option<String>,
    /// `/metrics` needs a `read` token (with a secret).
    pub metrics_require_auth: bool,
    /// Requests per second per token (burst twice that); 0: no limit.
    pub rate_limit: u32,
    /// How often revocations are re-read from the store.
    pub revocation_refresh: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            secret: None,
            previous_secret: None,
            metrics_require_auth: false,
            rate_limit: 0,
            revocation_refresh: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for AuthOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthOptions")
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field(
                "previous_secret",
                &self.previous_secret.as_ref().map(|_| "<set>"),
            )
            .field("metrics_require_auth", &self.metrics_require_auth)
            .field("rate_limit", &self.rate_limit)
            .field("revocation_refresh", &self.revocation_refresh)
            .finish()
    }
}

/// The caller of a request, when authentication is on.
#[derive(Debug, Clone)]
pub struct Principal(pub Arc<Claims>);

/// The components whose sessions the caller may see: `None` every one (no authentication, an
/// unbound `read` token, an `admin` token), else the components of its `read_components`
/// claim. The one rule of read visibility: every face that reads (REST, MCP, analytics, the
/// stream, the console) asks it and passes the answer to the store.
pub fn visible_components(principal: Option<&Principal>) -> Option<Vec<String>> {
    principal.and_then(|p| p.0.read_bound_components())
}

/// Whether a caller with visibility `visible` ([`visible_components`]) may see a session of
/// `component`.
pub fn may_see(visible: Option<&[String]>, component: &str) -> bool {
    visible.is_none_or(|v| v.iter().any(|c| c == component))
}

/// The caller's [`visible_components`], as a handler argument.
#[derive(Debug, Clone, Default)]
pub struct Visibility(pub Option<Vec<String>>);

impl Visibility {
    pub fn of(principal: Option<&Principal>) -> Self {
        Self(visible_components(principal))
    }

    pub fn components(&self) -> Option<&[String]> {
        self.0.as_deref()
    }

    /// Whether the caller may see a session of `component`.
    pub fn sees(&self, component: &str) -> bool {
        may_see(self.components(), component)
    }

    /// Why an aggregate over every component (the metrics) is not for this caller, or
    /// `None` when it is (it may see every component).
    pub fn aggregate_problem(&self) -> Option<String> {
        self.components().map(|v| {
            format!(
                "this token sees only the components {}; the metrics add up every component, \
                 so they need a read token not bound to components",
                v.join(", ")
            )
        })
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Visibility {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts.extensions.get::<Principal>()))
    }
}

/// What the server knows to authenticate calls: the verifier, the revocation cache and the
/// rate limiter.
pub struct Guard {
    verifier: Option<TokenVerifier>,
    metrics_require_auth: bool,
    revoked: RwLock<HashSet<String>>,
    limiter: Option<RateLimiter>,
}

impl Guard {
    pub fn new(options: &AuthOptions) -> Self {
        Self {
            verifier: options
                .secret
                .as_deref()
                .map(|s| TokenVerifier::new(s, options.previous_secret.as_deref())),
            metrics_require_auth: options.metrics_require_auth,
            revoked: RwLock::new(HashSet::new()),
            limiter: (options.rate_limit > 0).then(|| RateLimiter::new(options.rate_limit)),
        }
    }

    pub fn enabled(&self) -> bool {
        self.verifier.is_some()
    }

    /// Verifies `token` (or its absence) when authentication is on; `Ok(None)` when it is off.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Option<Claims>, TokenError> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or(TokenError::Missing)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let claims = verifier.verify(token)?;
        if self.is_revoked(&claims.jti) {
            return Err(TokenError::Revoked(claims.jti.chars().take(64).collect()));
        }
        Ok(Some(claims))
    }

    pub(crate) fn is_revoked(&self, jti: &str) -> bool {
        self.revoked.read().map(|r| r.contains(jti)).unwrap_or(true)
    }

    /// Adds revocations to the cache (after the store has them).
    pub fn add_revoked(&self, jtis: impl IntoIterator<Item = String>) {
        if let Ok(mut r) = self.revoked.write() {
            r.extend(jtis);
        }
    }

    /// Replaces the cache with the store's list.
    pub fn set_revoked(&self, jtis: Vec<String>) {
        if let Ok(mut r) = self.revoked.write() {
            *r = jtis.into_iter().collect();
        }
    }

    /// `Err(seconds to wait)` when `claims`' token is over its rate.
    pub fn rate_check(&self, claims: &Claims) -> Result<(), u64> {
        match &self.limiter {
            Some(l) => l.check(&claims.jti),
            None => Ok(()),
        }
    }
}

/// Re-reads the revocations from the store into the cache.
pub async fn refresh_revocations(state: &AppState) {
    if !state.guard.enabled() {
        return;
    }
    match state.store.revoked_tokens(chrono::Utc::now()).await {
        Ok(list) => state.guard.set_revoked(list),
        Err(e) => tracing::warn!(error = %e, "cannot read revoked tokens; keeping the cached list"),
    }
}

/// A token bucket per key: `rate` tokens a second, `2 × rate` at most.
struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: 2.0 * f64::from(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            // Forget buckets that have refilled: they behave like new ones.
            buckets.retain(|_, b| !b.is_full(now));
        }
        let bucket = buckets
            .entry(key.to_string())
            .or_insert_with(|| Bucket::full(self.rate, self.burst, now));
        if bucket.take(1.0, now) {
            Ok(())
        } else {
            Err(bucket.wait_for(1.0, now).as_secs_f64().ceil().max(1.0) as u64)
        }
    }
}

/// The bearer token of `headers`: `Ok(None)` when there is no `Authorization` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, TokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(TokenError::MalformedHeader(
            "more than one Authorization header".into(),
        ));
    }
    if value.len() > MAX_TOKEN_BYTES + 16 {
        return Err(TokenError::MalformedHeader(format!(
            "longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let text = value
        .to_str()
        .map_err(|_| TokenError::MalformedHeader("not printable ASCII".into()))?;
    let (scheme, token) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| TokenError::MalformedHeader("expected 'Bearer <token>'".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::MalformedHeader(format!(
            "scheme '{}' is not Bearer",
            scheme.chars().take(20).collect::<String>()
        )));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::MalformedHeader(
            "the Bearer token is empty".into(),
        ));
    }
    Ok(Some(token))
}

/// The REST layer: every call but the public ones needs a valid token with the scope the route
/// table says (deny by default: a call no route serves needs `read` or `admin`).
pub(crate) async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let guard = &state.guard;
    if !guard.enabled() {
        return next.run(req).await;
    }
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let matched = matched.as_deref();
    let Some(scope) = crate::routes::required(
        req.method(),
        matched,
        req.uri().path(),
        guard.metrics_require_auth,
    ) else {
        return next.run(req).await;
    };
    let (method, no_bearer) = (
        req.method().clone(),
        req.headers().get(AUTHORIZATION).is_none(),
    );
    if no_bearer && crate::routes::cookie_allowed(&method, matched) {
        if let Some((principal, session)) = crate::console::console_principal(&state, req.headers())
        {
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(session);
            return next.run(req).await;
        }
        if crate::routes::is_console_page(&method, matched) && method != Method::POST {
            return axum::response::Redirect::to("/login").into_response();
        }
    }
    let claims = match bearer(req.headers()).and_then(|t| guard.authenticate(t)) {
        Ok(Some(c)) => c,
        Ok(None) => return next.run(req).await,
        Err(e) => return AppError::Unauthorized(e.to_string()).into_response(),
    };
    if !claims.allows(scope) {
        return AppError::Forbidden(format!(
            "this token (sub '{}') lacks the '{scope}' scope that {} {} needs; it holds: {}",
            claims.sub.chars().take(64).collect::<String>(),
            req.method(),
            req.uri().path().chars().take(100).collect::<String>(),
            scope_list(&claims)
        ))
        .into_response();
    }
    if let Err(retry_after) = guard.rate_check(&claims) {
        return AppError::TooManyRequests {
            message: format!("rate limit exceeded for this token; retry in {retry_after} s"),
            retry_after,
        }
        .into_response();
    }
    req.extensions_mut().insert(Principal(Arc::new(claims)));
    next.run(req).await
}

pub(crate) fn scope_list(claims: &Claims) -> String {
    let held = claims.known_scopes();
    if held.is_empty() {
        "no known scope".into()
    } else {
        held.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The scope an MCP tool needs: `track_*` emit, every other (and unknown) tool read.
pub(crate) fn tool_scope(tool: &str) -> Scope {
    if tool.starts_with("track_") {
        Scope::Emit
    } else {
        Scope::Read
    }
}

/// `POST /v1/tokens/revoke` (admin): `{"jti": "...", "expires_at": <Unix seconds, optional>}`.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let jti = match v.get("jti") {
        Some(serde_json::Value::String(j)) if !j.trim().is_empty() && j.len() <= 256 => j.trim(),
        _ => {
            return Err(AppError::BadRequest(
                "jti: is required, a non-empty string of at most 256 characters".into(),
            ));
        }
    };
    let expires_at = match v.get("expires_at") {
        None | Some(serde_json::Value::Null) => None,
        Some(n) => Some(
            n.as_i64()
                .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
                .ok_or_else(|| {
                    AppError::BadRequest("expires_at: must be Unix seconds (an integer)".into())
                })?,
        ),
    };
    state.store.revoke_token(jti, expires_at).await?;
    state.guard.add_revoked([jti.to_string()]);
    tracing::info!(jti, "token revoked");
    Ok(axum::Json(
        serde_json::json!({"jti": jti, "status": "revoked"}),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst_then_refuses() {
        let l = RateLimiter::new(2);
        for _ in 0..4 {
            assert!(l.check("a").is_ok());
        }
        assert_eq!(l.check("a"), Err(1));
        assert!(l.check("b").is_ok());
    }
}
