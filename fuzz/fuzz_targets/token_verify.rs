//! Token verification (CAT and JWT) over arbitrary strings: never panics,
//! and nothing unsigned ever verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_tokens::{KeySet, RequestUrl, VerifyOptions, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let keys: KeySet = "k1:HS256:c2VjcmV0LWtleS1vZi1hdC1sZWFzdC0zMi1ieXRlcy1sb25n"
        .parse()
        .expect("static key config");
    let mut opts = VerifyOptions::new(1_800_000_000);
    opts.url = RequestUrl::parse("https://edge.example/live/a/video.m3u8").ok();
    assert!(
        verify(token, &keys, &opts).is_err(),
        "an arbitrary input verified"
    );
});
