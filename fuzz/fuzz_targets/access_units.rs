//! Media over QUIC video ingest: an `avcC` record and access units
//! (length-prefixed and Annex B) from arbitrary bytes. Never panics; every
//! frame it emits is length-prefixed NAL units that fit their data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_media::{
    ingest::{AccessUnitIngest, IngestEvent},
    model::{MediaTime, VideoCodec},
};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (record, units) = rest.split_at(usize::from(split).min(rest.len()));
    let mut ingest = AccessUnitIngest::new(1, VideoCodec::H264);
    let _ = ingest.set_avc_config(record);
    let mut events = Vec::new();
    for (i, unit) in units.chunks(64).enumerate() {
        let t = MediaTime::from_90khz(i as i64 * 3000);
        events.extend(ingest.push_length_prefixed(unit, t, t));
        events.extend(ingest.push_annexb(unit, t, t));
    }
    let mut hevc = AccessUnitIngest::new(2, VideoCodec::H265);
    events.extend(hevc.push_annexb(units, MediaTime::from_90khz(0), MediaTime::from_90khz(0)));
    for ev in events {
        if let IngestEvent::Frame { frame, .. } = ev {
            let mut rest = &frame.data[..];
            while !rest.is_empty() {
                assert!(rest.len() >= 4);
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                assert!(rest.len() >= 4 + len);
                rest = &rest[4 + len..];
            }
        }
    }
});
