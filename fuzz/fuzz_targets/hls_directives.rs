//! LL-HLS delivery directives (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) from
//! arbitrary query strings: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_hls::DeliveryDirectives;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = DeliveryDirectives::parse(Some(s)) {
        assert!(d.part.is_none() || d.msn.is_some());
    }
});
