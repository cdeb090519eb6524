//! HS256 signing and verification on `jsonwebtoken`, and reading a token without its secret.

use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};
use session_buddy_events::auth::{AUDIENCE, Claims};

use crate::Grant;

/// Clock skew tolerated on `exp`.
pub const LEEWAY_SECS: u64 = 30;

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

/// Signs `claims` with `secret` (HS256).
pub fn mint(secret: &str, claims: &Claims) -> Result<String, TokenError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| TokenError::Signing(e.to_string()))
}

/// The token of `grant`, issued at `now` (Unix seconds) with id `jti`, signed with `secret`.
pub fn mint_grant(secret: &str, grant: &Grant, now: i64, jti: &str) -> Result<String, TokenError> {
    mint(secret, &grant.claims(now, jti))
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
        let alg = header(token)?.alg;
        if alg != Algorithm::HS256 {
            return Err(TokenError::Algorithm(format!("{alg:?}")));
        }
        let mut last = TokenError::BadSignature;
        for key in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = map_error(&e);
                    if last != TokenError::BadSignature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

/// A token's header (`jsonwebtoken::decode_header`), read before any check so that a token
/// signed otherwise (`none`, `RS256`…) gets a clear answer.
fn header(token: &str) -> Result<Header, TokenError> {
    let parts = token.split('.').count();
    if parts != 3 {
        return Err(TokenError::Malformed(format!(
            "a JWT has 3 parts separated by '.', this has {parts}"
        )));
    }
    jsonwebtoken::decode_header(token).map_err(|e| header_error(&e))
}

/// `decode_header` refuses algorithms it does not know (`none`) as JSON errors: name them.
fn header_error(e: &Error) -> TokenError {
    match e.kind() {
        ErrorKind::Json(json) => {
            let text = json.to_string();
            match text
                .split('`')
                .nth(1)
                .filter(|_| text.starts_with("unknown variant"))
            {
                Some(alg) => TokenError::Algorithm(alg.chars().take(20).collect()),
                None if text.contains("missing field `alg`") => {
                    TokenError::Malformed("the header has no 'alg'".into())
                }
                None => TokenError::Malformed("the header is not JSON".into()),
            }
        }
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            TokenError::Malformed("the header is not base64url".into())
        }
        _ => TokenError::Malformed("not a valid JWT".into()),
    }
}

fn map_error(e: &Error) -> TokenError {
    match e.kind() {
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

/// A token read WITHOUT checking its signature: to name what is being revoked or shown, never
/// to authorise.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    /// The header's `alg`, as jsonwebtoken names it (`HS256`).
    pub alg: String,
    pub claims: Map<String, Value>,
}

/// Reads `token`'s header and claims without its secret.
pub fn inspect(token: &str) -> Result<Inspected, TokenError> {
    let token = token.trim();
    let alg = header(token)?.alg;
    let data = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .map_err(|_| TokenError::Malformed("the payload is not base64url JSON".into()))?;
    match data.claims {
        Value::Object(claims) => Ok(Inspected {
            alg: format!("{alg:?}"),
            claims,
        }),
        _ => Err(TokenError::Malformed(
            "the payload is not a JSON object".into(),
        )),
    }
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
            iat: Some(1),
            exp,
            jti: "j-1".into(),
            scopes: vec!["emit".into()],
            component: Some("akosha".into()),
            read_components: Vec::new(),
        }
    }

    fn now() -> i64 {
        i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
    }

    /// Fails when the crypto backend is missing or doubled by feature unification (that
    /// panics at first use).
    #[test]
    fn sign_and_verify_round_trip() {
        let c = claims(now() + 60);
        let token = mint(SECRET, &c).unwrap();
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
        let old = mint(SECRET, &claims(1_000)).unwrap();
        assert_eq!(
            TokenVerifier::new(SECRET, None).verify(&old),
            Err(TokenError::Expired)
        );
        let seen = inspect(&token).unwrap();
        assert_eq!(seen.alg, "HS256");
        assert_eq!(seen.claims["component"], "akosha");
    }

    #[test]
    fn headers_are_read_by_jsonwebtoken_and_explained() {
        // {"alg":"none"} and {"typ":"JWT"}, base64url.
        let none = "eyJhbGciOiJub25lIn0.e30.";
        let v = TokenVerifier::new(SECRET, None);
        assert_eq!(v.verify(none), Err(TokenError::Algorithm("none".into())));
        assert!(matches!(v.verify("a.b"), Err(TokenError::Malformed(m)) if m.contains("3 parts")));
        assert!(matches!(v.verify("!.e30.x"), Err(TokenError::Malformed(_))));
        assert_eq!(
            v.verify("eyJ0eXAiOiJKV1QifQ.e30.x"),
            Err(TokenError::Malformed("the header has no 'alg'".into()))
        );
        assert!(inspect("eyJhbGciOiJIUzI1NiJ9.WzFd.x").is_err());
    }
}
