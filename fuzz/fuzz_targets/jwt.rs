#![no_main]
//! Any bytes as a bearer token: parsing and verification never panic, and only a correctly
//! signed token verifies.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    session_buddy_server::fuzzing::jwt(data);
});
