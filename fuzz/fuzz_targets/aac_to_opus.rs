//! The AAC to Opus transcoder (WHEP audio) over arbitrary frames: any
//! AAC-LC configuration (sample rate index, mono or stereo, or raw
//! AudioSpecificConfig bytes), then frames of arbitrary bytes at times that
//! run on, jump or go back. Every refusal is an `Err`; nothing panics
//! (libFuzzer's panic hook aborts before the transcoder's own
//! `catch_unwind` could hide a library's panic, so those are found too),
//! and every packet is a plausible 20 ms Opus packet.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use livestack_media::model::{AudioCodec, AudioParams, Frame, MediaTime, Timescale};
use livestack_transcode::{AacToOpus, MAX_OPUS_PACKET, OPUS_FRAME_SAMPLES};

/// AAC sampling frequencies by index (ISO/IEC 14496-3 §1.6.3.4).
const RATES: [u32; 12] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let index = usize::from(selector & 0x0f) % RATES.len();
    let channels = 1 + (selector >> 4 & 1);
    let config = if selector & 0x80 == 0 {
        // AAC-LC (object type 2), this rate index and channel configuration.
        let asc = (2u16 << 11) | ((index as u16) << 7) | (u16::from(channels) << 3);
        Bytes::copy_from_slice(&asc.to_be_bytes())
    } else {
        let Some((asc, tail)) = rest.split_at_checked(4) else {
            return;
        };
        rest = tail;
        Bytes::copy_from_slice(asc)
    };
    let Some(rate) = Timescale::new(RATES[index]) else {
        return;
    };
    let params = AudioParams {
        codec: AudioCodec::Aac,
        sample_rate: rate,
        channels,
        samples_per_frame: 1024,
        codec_string: "mp4a.40.2".into(),
        decoder_config: config,
        language: None,
    };
    let Ok(mut transcoder) = AacToOpus::new(&params) else {
        return;
    };
    let mut pts = 0i64;
    let mut out = Vec::new();
    // Frames: one byte of timing (0: next frame; else a jump), two bytes
    // of length, the payload.
    while let Some((&timing, tail)) = rest.split_first() {
        let Some((len, tail)) = tail.split_at_checked(2) else {
            return;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]) % 2048);
        let (payload, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        pts += match timing {
            0..=200 => 1024,
            t => (i64::from(t) - 228) * 1000,
        };
        let time = MediaTime::new(pts, rate);
        let frame = Frame {
            pts: time,
            dts: time,
            duration: None,
            keyframe: true,
            data: Bytes::copy_from_slice(payload),
        };
        let before = out.len();
        if transcoder.push(&frame, &mut out).is_err() {
            assert_eq!(out.len(), before, "a refused frame yields nothing");
        }
        for p in out.drain(..) {
            assert!(!p.data.is_empty() && p.data.len() <= MAX_OPUS_PACKET);
            assert_eq!(p.samples, OPUS_FRAME_SAMPLES);
        }
    }
});
