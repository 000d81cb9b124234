//! `TsIngest` over arbitrary bytes, pushed in chunks whose sizes come from
//! the input, must never panic; its counters must stay consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestack_media::ingest::TsIngest;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut ingest = TsIngest::new();
    for piece in rest.chunks(usize::from(chunk).max(1) * 7) {
        ingest.push(piece);
        while ingest.poll_event().is_some() {}
    }
    ingest.finish();
    while ingest.poll_event().is_some() {}
    assert_eq!(ingest.stats().bytes, rest.len() as u64);
});
