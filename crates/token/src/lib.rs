//! Session-Buddy tokens, once: what a caller may ask for ([`Grant`], with its limits), how a
//! token is signed ([`mint`]) and checked ([`TokenVerifier`]), and how one is read without a
//! secret ([`inspect`]). HS256 on `jsonwebtoken` (pure-Rust backend) only.
//!
//! The server (verification), `session-buddy token create|verify|revoke` and fastblocks'
//! `auth` helper all use this crate, so a token and a refusal read the same on every face.
//! Claim and scope types and the secret rules are in `session_buddy_events::auth`.

mod grant;
mod jwt;

pub use grant::{
    Grant, SUBJECT_MAX_CHARS, TTL_MAX, TTL_MAX_TEXT, parse_scope, parse_ttl, signing_secret,
};
pub use jwt::{Inspected, LEEWAY_SECS, TokenError, TokenVerifier, inspect, mint, mint_grant};
pub use session_buddy_events::auth::{AUDIENCE, Claims, ISSUER, Scope, secret_problem};
