//! SRT Access Control streamid parsing over arbitrary strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_media::srt_access::StreamId;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = StreamId::parse(s) {
        let name = id.broadcast_name();
        assert!(!name.is_empty() && name.len() <= 128);
        assert!(!name.contains('/') && !name.contains(".."));
    }
});
