//! H.264 NAL header, SPS and avcC building over arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_media::h264;

fuzz_target!(|data: &[u8]| {
    let _ = h264::NalHeader::parse(data);
    // Force the SPS nal_unit_type so the parser gets past the header.
    let mut nal = vec![0x67];
    nal.extend_from_slice(data);
    if let Ok(sps) = h264::Sps::parse(&nal) {
        let _ = sps.codec_string();
        assert!(sps.width > 0 && sps.height > 0);
    }
    let _ = h264::video_params(&nal, &[0x68, 0xce]);
});
