//! The edge manifest rewriter over arbitrary playlists: never panics, and
//! without options the output is the input byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_manifest::{RewriteOptions, rewrite};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(out) = rewrite(s, &RewriteOptions::default()) {
        assert_eq!(out, s);
    }
    let opts = RewriteOptions {
        token_query: Some("token=abc".into()),
        max_bandwidth: Some(1_000_000),
        ..RewriteOptions::default()
    };
    let _ = rewrite(s, &opts);
});
