#![no_main]
//! Any bytes as the query string of `GET /v1/sessions`: parsing never panics.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    session_buddy_server::fuzzing::query_params(data);
});
