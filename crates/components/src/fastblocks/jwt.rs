//! HS256 JSON Web Tokens: mint with a secret, decode without one (pure Rust, no JWT crate).

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Map, Value, json};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

// Claim names, scope names and secret rules are shared with the server, which verifies these
// tokens (`session_buddy_events::auth`); only the signing is local.
pub(crate) use session_buddy_events::auth::{AUDIENCE, ISSUER, secret_problem};
pub(crate) const SCOPES: &[&str] = session_buddy_events::auth::SCOPE_NAMES;

/// The base64url HMAC-SHA256 of `signing_input`.
pub(crate) fn sign(secret: &[u8], signing_input: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()))
}

pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// What a minted token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) subject: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) component: Option<String>,
    pub(crate) ttl_secs: i64,
}

/// An HS256 token for `grant`, issued at `now` (Unix seconds) with id `jti`.
pub(crate) fn mint(secret: &str, grant: &Grant, now: i64, jti: &str) -> String {
    let mut claims = Map::new();
    claims.insert("aud".into(), json!(AUDIENCE));
    claims.insert("iss".into(), json!(ISSUER));
    claims.insert("sub".into(), json!(grant.subject));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(grant.ttl_secs)));
    claims.insert("jti".into(), json!(jti));
    claims.insert("scopes".into(), json!(grant.scopes));
    if let Some(c) = &grant.component {
        claims.insert("component".into(), json!(c));
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = sign(secret.as_bytes(), &signing_input);
    format!("{signing_input}.{signature}")
}

/// A token's header and claims, read without checking the signature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
}

pub(crate) fn decode(token: &str) -> Result<Decoded, String> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header, payload, _signature] = parts.as_slice() else {
        return Err(format!(
            "not a JWT: it has {} part(s) separated by '.', a JWT has 3",
            parts.len()
        ));
    };
    let part = |name: &str, text: &str| -> Result<Map<String, Value>, String> {
        let bytes = URL_SAFE_NO_PAD_INDIFFERENT
            .decode(text)
            .map_err(|e| format!("not a JWT: the {name} is not base64url ({e})"))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(format!("not a JWT: the {name} is not a JSON object")),
            Err(e) => Err(format!("not a JWT: the {name} is not JSON ({e})")),
        }
    };
    Ok(Decoded {
        header: part("header", header)?,
        claims: part("payload", payload)?,
    })
}

/// Whether `token`'s HS256 signature matches `secret`.
pub(crate) fn verify(token: &str, secret: &str) -> bool {
    let token = token.trim();
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD_INDIFFERENT.decode(signature) else {
        return false;
    };
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            mac.verify_slice(&sig).is_ok()
        }
        Err(_) => false,
    }
}

/// A token's scopes: the `scopes` array, or an OAuth-style space-separated `scope`.
pub(crate) fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    if let Some(list) = claims.get("scopes").and_then(Value::as_array) {
        return list
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
    }
    claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    #[test]
    fn hmac_matches_independent_vectors() {
        // RFC 4231, test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Computed with Python's hmac/hashlib/base64 while writing this test.
        assert_eq!(
            sign(
                SECRET.as_bytes(),
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9"
            ),
            "GX8JROAGWU1FsDO3ddxAclpSMIy-Z3Gj0y--HGa65c4"
        );
    }

    #[test]
    fn minted_tokens_decode_to_their_claims_and_verify() {
        let grant = Grant {
            subject: "ci-bot".into(),
            scopes: vec!["emit".into(), "read".into()],
            component: Some("crackerjack".into()),
            ttl_secs: 30 * 86400,
        };
        let token = mint(
            SECRET,
            &grant,
            1_700_000_000,
            "5f0c7a8e-0000-4000-8000-000000000001",
        );
        let d = decode(&token).unwrap();
        assert_eq!(d.header["alg"], "HS256");
        assert_eq!(d.header["typ"], "JWT");
        let c = &d.claims;
        assert_eq!(c["aud"], "session-buddy");
        assert_eq!(c["iss"], "session-buddy");
        assert_eq!(c["sub"], "ci-bot");
        assert_eq!(c["iat"], 1_700_000_000);
        assert_eq!(c["exp"], 1_700_000_000 + 30 * 86400);
        assert_eq!(c["jti"], "5f0c7a8e-0000-4000-8000-000000000001");
        assert_eq!(c["component"], "crackerjack");
        assert_eq!(scopes(c), ["emit", "read"]);
        assert!(verify(&token, SECRET));
        assert!(!verify(&token, "another-secret-another-secret-another"));

        // A changed payload no longer matches its signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"root","scopes":["admin"]}"#);
        let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
        assert!(!verify(&forged, SECRET));
        assert_eq!(decode(&forged).unwrap().claims["sub"], "root");

        let no_component = Grant {
            component: None,
            ..grant
        };
        let d = decode(&mint(SECRET, &no_component, 0, "x")).unwrap();
        assert!(!d.claims.contains_key("component"));
    }

    #[test]
    fn malformed_tokens_are_explained() {
        assert!(decode("abc").unwrap_err().contains("1 part(s)"));
        assert!(decode("a.b.c").unwrap_err().contains("header"));
        let header = URL_SAFE_NO_PAD.encode("{}");
        let bad = format!("{header}.{}.sig", URL_SAFE_NO_PAD.encode("[1]"));
        assert!(
            decode(&bad)
                .unwrap_err()
                .contains("payload is not a JSON object")
        );
        let mut claims = Map::new();
        claims.insert("scope".into(), json!("read emit"));
        assert_eq!(scopes(&claims), ["read", "emit"]);
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(secret_problem("short").unwrap().contains("too short"));
        assert!(
            secret_problem(&"a".repeat(40))
                .unwrap()
                .contains("placeholder")
        );
        assert!(secret_problem("changeme-changeme-changeme-changeme").is_some());
        assert_eq!(secret_problem(SECRET), None);
    }
}
