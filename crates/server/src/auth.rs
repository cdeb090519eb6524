//! Authentication and authorisation: HS256 tokens (`jsonwebtoken`, pure-Rust backend), the
//! scope each route and tool needs, the component binding of `emit` tokens, revocations
//! (cached in memory, refreshed from the store) and per-token rate limits.
//!
//! Without a secret every call is allowed (the binary then serves loopback only).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use session_buddy_events::auth::{AUDIENCE, Claims, Scope};

use crate::{AppError, AppState};

/// Longest `Authorization` value we read.
const MAX_TOKEN_BYTES: usize = 8192;
/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 30;

/// Why a token is not accepted, in the words a caller needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "a token is required (SESSION_BUDDY_SECRET is set): send Authorization: Bearer <token>"
    )]
    Missing,
    #[error("malformed Authorization header: {0}")]
    MalformedHeader(String),
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("the token's algorithm '{0}' is not accepted; tokens are signed with HS256")]
    Algorithm(String),
    #[error("the token's signature does not match the server's secret")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token's audience is not 'session-buddy'")]
    WrongAudience,
    #[error("the token has no '{0}' claim")]
    MissingClaim(String),
    #[error("the token's claims are invalid: {0}")]
    InvalidClaims(String),
    #[error("the token has been revoked (jti {0})")]
    Revoked(String),
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

/// Signs tokens with `secret` (HS256).
pub fn mint_token(secret: &str, claims: &Claims) -> Result<String, TokenError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| TokenError::Signing(e.to_string()))
}

/// Checks signature (current secret, then the previous one), algorithm, audience and expiry.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Vec<DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TokenVerifier {
    /// `previous` is a rotated-out secret still accepted for verification.
    pub fn new(secret: &str, previous: Option<&str>) -> Self {
        let mut keys = vec![DecodingKey::from_secret(secret.as_bytes())];
        if let Some(p) = previous.filter(|p| !p.is_empty()) {
            keys.push(DecodingKey::from_secret(p.as_bytes()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Self { keys, validation }
    }

    /// The token's claims when it is valid (revocation is checked by the caller).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let token = token.trim();
        let alg = header_alg(token)?;
        if alg != "HS256" {
            return Err(TokenError::Algorithm(alg.chars().take(20).collect()));
        }
        let mut last = TokenError::BadSignature;
        for key in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = map_error(e.kind());
                    if last != TokenError::BadSignature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

/// The `alg` of a token's header, read before any check so `none` gets a clear answer.
fn header_alg(token: &str) -> Result<String, TokenError> {
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(TokenError::Malformed(format!(
            "a JWT has 3 parts separated by '.', this has {}",
            parts.len()
        )));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0].trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("the header is not base64url".into()))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("the header is not JSON".into()))?;
    header
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| TokenError::Malformed("the header has no 'alg'".into()))
}

/// A token's payload, read WITHOUT checking its signature (to name what is being revoked or
/// inspected, never to authorise).
pub fn unverified_payload(token: &str) -> Result<serde_json::Value, TokenError> {
    use base64::Engine as _;
    header_alg(token.trim())?;
    let payload = token.trim().split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("the payload is not base64url".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("the payload is not JSON".into()))
}

fn map_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::Algorithm("unknown".into())
        }
        ErrorKind::Json(e) => {
            let text = e.to_string();
            match text
                .split('`')
                .nth(1)
                .filter(|_| text.contains("missing field"))
            {
                Some(field) => TokenError::MissingClaim(field.to_string()),
                None => TokenError::InvalidClaims(text),
            }
        }
        ErrorKind::InvalidClaimFormat(c) => TokenError::InvalidClaims(format!("'{c}'")),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            TokenError::Malformed("not a valid JWT".into())
        }
        other => TokenError::InvalidClaims(format!("{other:?}")),
    }
}

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

    fn is_revoked(&self, jti: &str) -> bool {
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
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
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
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
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

/// The scope a REST call needs: reads need `read`, sending events `emit`, any other write
/// `admin`. New routes are covered by their method.
fn required_scope(method: &Method, path: &str) -> Scope {
    if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else if method == Method::POST && path == "/v1/events" {
        Scope::Emit
    } else {
        Scope::Admin
    }
}

/// Paths that never need a token. `/mcp` checks tokens per tool call itself.
fn is_public(guard: &Guard, path: &str) -> bool {
    matches!(path, "/health" | "/healthz" | "/readyz")
        || (path == "/metrics" && !guard.metrics_require_auth)
        || path == "/mcp"
        || path.starts_with("/mcp/")
}

/// The REST layer: every path but the public ones needs a valid token with the scope its
/// method needs (deny by default, so routes added later are covered).
pub(crate) async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let guard = &state.guard;
    if !guard.enabled() || is_public(guard, req.uri().path()) {
        return next.run(req).await;
    }
    let claims = match bearer(req.headers()).and_then(|t| guard.authenticate(t)) {
        Ok(Some(c)) => c,
        Ok(None) => return next.run(req).await,
        Err(e) => return AppError::Unauthorized(e.to_string()).into_response(),
    };
    let scope = required_scope(req.method(), req.uri().path());
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

    const SECRET: &str = "0123456789abcdef0123456789abcdef-unit";

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "unit".into(),
            aud: AUDIENCE.into(),
            iss: Some("session-buddy".into()),
            iat: Some(chrono::Utc::now().timestamp()),
            exp,
            jti: "j-1".into(),
            scopes: vec!["emit".into()],
            component: Some("akosha".into()),
        }
    }

    /// Fails when the crypto backend is missing or doubled by feature unification (that
    /// panics at first use).
    #[test]
    fn sign_and_verify_round_trip() {
        let c = claims(chrono::Utc::now().timestamp() + 60);
        let token = mint_token(SECRET, &c).unwrap();
        assert_eq!(TokenVerifier::new(SECRET, None).verify(&token).unwrap(), c);
        let other = "another-secret-of-enough-length-0123456789";
        assert_eq!(
            TokenVerifier::new(other, None).verify(&token),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            TokenVerifier::new(other, Some(SECRET))
                .verify(&token)
                .unwrap(),
            c
        );
        let old = mint_token(SECRET, &claims(1_000)).unwrap();
        assert_eq!(
            TokenVerifier::new(SECRET, None).verify(&old),
            Err(TokenError::Expired)
        );
    }

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
