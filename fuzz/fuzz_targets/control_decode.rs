//! Control-plane input: `--redis` URLs (`RedisTarget::parse`) and the JSON
//! records read back from Redis (untrusted: another version or a hand edit
//! may have written them). Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_control::{NodeCommand, NodeInfo, Placement, RedisTarget, Session, StreamKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(t) = RedisTarget::parse(s)
    {
        // Display redacts the password and must not panic either.
        let _ = t.to_string();
    }
    let _ = serde_json::from_slice::<NodeInfo>(data);
    let _ = serde_json::from_slice::<Placement>(data);
    let _ = serde_json::from_slice::<StreamKey>(data);
    let _ = serde_json::from_slice::<Session>(data);
    let _ = serde_json::from_slice::<NodeCommand>(data);
});
