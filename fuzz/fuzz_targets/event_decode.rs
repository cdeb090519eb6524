#![no_main]
//! Any bytes as a request body's event: decoding and validation never panic, and whatever
//! validates serialises and validates again to the same event.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    session_buddy_server::fuzzing::event_decode(data);
});
