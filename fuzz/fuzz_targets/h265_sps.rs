//! H.265 NAL header, SPS and hvcC building over arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_media::h265;

fuzz_target!(|data: &[u8]| {
    let _ = h265::NalHeader::parse(data);
    // Force the SPS nal_unit_type so the parser gets past the header.
    let mut nal = vec![0x42, 0x01];
    nal.extend_from_slice(data);
    if let Ok(sps) = h265::Sps::parse(&nal) {
        let _ = sps.ptl.codec_string();
        assert!(sps.width > 0 && sps.height > 0);
    }
    let _ = h265::video_params(&[0x40, 0x01], &nal, &[0x44, 0x01]);
});
