//! Key-configuration strings and request URLs: parsed without panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_tokens::{KeySet, RequestUrl};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = s.parse::<KeySet>();
    let _ = RequestUrl::parse(s);
});
