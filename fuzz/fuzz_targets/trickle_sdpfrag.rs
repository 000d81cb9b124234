//! Trickle ICE fragments (RFC 8840 `application/trickle-ice-sdpfrag`, the
//! body of a WHIP/WHEP PATCH) from arbitrary bytes: parsed or refused with
//! a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = livestack_sfu::parse_sdpfrag(text);
    }
});
