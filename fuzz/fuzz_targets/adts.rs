//! ADTS header parsing and frame iteration over arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_media::adts;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = adts::AdtsHeader::parse(data) {
        let _ = h.audio_specific_config();
        let _ = h.codec_string();
        assert!(h.sample_rate() > 0);
    }
    let mut total = 0;
    for frame in adts::frames(data).flatten() {
        total += usize::from(frame.header.frame_length);
    }
    assert!(total <= data.len());
});
