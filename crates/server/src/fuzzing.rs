//! The bodies of the fuzz targets (`fuzz/`), kept here so the ordinary tests replay the
//! committed corpus through exactly the same code.

use serde_json::Value;

/// Decodes `data` as an event the way ingest does; panics only if an invariant breaks.
pub fn event_decode(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let values = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for v in values {
        if let Ok(event) = session_buddy_events::parse_event(&v) {
            // What validates is stored as canonical JSON, which must validate again to the same
            // event (arguments may be redacted once more, so they are compared by length).
            let again: Value = serde_json::from_str(&event.to_canonical_json())
                .unwrap_or_else(|e| panic!("canonical JSON does not parse: {e}"));
            let reparsed = session_buddy_events::parse_event(&again)
                .unwrap_or_else(|e| panic!("a valid event no longer validates: {e}"));
            assert_eq!(reparsed.storage_id(), event.storage_id());
            assert_eq!(reparsed.session_id(), event.session_id());
            assert_eq!(reparsed.timestamp(), event.timestamp());
        }
        let _ = session_buddy_events::parse_session_start(&v);
        let _ = session_buddy_events::parse_session_end(&v);
    }
}

/// Parses `data` as the query string of `GET /v1/sessions`.
pub fn query_params(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut params = serde_json::Map::new();
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(k.to_string(), Value::String(v.to_string()));
    }
    let _ = crate::parse_session_filter(&params);
}

/// Verifies `data` as a bearer token (and as the JSON a token's payload decodes to): never
/// panics, and nothing but a correctly signed, unexpired token for our audience verifies.
pub fn jwt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let verifier = crate::auth::TokenVerifier::new(FUZZ_SECRET, None);
    if let Ok(claims) = verifier.verify(text) {
        // Only a token we could have minted with the secret can verify.
        let again = crate::auth::mint_token(FUZZ_SECRET, &claims)
            .unwrap_or_else(|e| panic!("a verified token's claims do not mint: {e}"));
        assert!(verifier.verify(&again).is_ok());
    }
    let _ = session_buddy_token::inspect(text);
}

/// The secret the JWT fuzz target verifies against (a forged token must not pass).
pub const FUZZ_SECRET: &str = "fuzzing-secret-0123456789abcdef0123456789";
