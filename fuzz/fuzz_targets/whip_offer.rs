//! WHIP offers from arbitrary bytes: the origin's offer check (size,
//! SDP parse, str0m's negotiation, the H.264/Opus requirement) refuses
//! with a reason and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = std::str::from_utf8(data) {
        let _ = livestack_sfu::check_offer(offer);
    }
});
