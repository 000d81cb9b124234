//! The relay track format (origin-to-origin MoQ relay): frames, parameter
//! records and catalogs from arbitrary bytes; what decodes re-encodes to
//! the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_media::relay_track;

fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(frame) = relay_track::decode_frame(bytes) {
        let again = relay_track::encode_frame(&frame).expect("one clock");
        assert_eq!(relay_track::decode_frame(again).expect("round trip"), frame);
    }
    if let Ok(params) = relay_track::decode_params(data) {
        let again = relay_track::encode_params(&params);
        assert_eq!(relay_track::decode_params(&again).expect("round trip"), params);
    }
    if let Ok(catalog) = relay_track::Catalog::decode(data) {
        assert_eq!(relay_track::Catalog::decode(&catalog.encode()).expect("round trip"), catalog);
    }
});
