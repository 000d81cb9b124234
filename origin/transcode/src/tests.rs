//! Unit tests on real AAC (fixtures made by ffmpeg's AAC encoder, see
//! `tests/data/README.md`).

use super::*;
use livestack_media::adts;

const STEREO_44K1: &[u8] = include_bytes!("../tests/data/sine440-44k1-stereo.aac");
const MONO_48K: &[u8] = include_bytes!("../tests/data/sine1k-48k-mono.aac");

/// The track parameters and raw frames of an ADTS stream, times from
/// `start` (source clock ticks), 1024 samples apart.
fn frames(adts_stream: &[u8], start: i64) -> (AudioParams, Vec<Frame>) {
    let mut params = None;
    let mut out = Vec::new();
    for (i, f) in adts::frames(adts_stream).enumerate() {
        let f = f.expect("a good ADTS frame");
        let p = f.header.audio_params().expect("AAC params");
        let pts = MediaTime::new(start + i as i64 * AAC_FRAME_SAMPLES as i64, p.sample_rate);
        out.push(Frame {
            pts,
            dts: pts,
            duration: Some(MediaTime::new(AAC_FRAME_SAMPLES as i64, p.sample_rate)),
            keyframe: true,
            data: Bytes::copy_from_slice(f.payload),
        });
        params.get_or_insert(p);
    }
    (params.expect("frames"), out)
}

fn transcode_all(t: &mut AacToOpus, frames: &[Frame]) -> Vec<OpusPacket> {
    let mut out = Vec::new();
    for f in frames {
        t.push(f, &mut out).expect("a good frame transcodes");
    }
    out
}

fn assert_contiguous(packets: &[OpusPacket]) {
    for w in packets.windows(2) {
        assert_eq!(
            w[1].pts.ticks() - w[0].pts.ticks(),
            OPUS_FRAME_SAMPLES as i64,
            "packets 20 ms apart"
        );
    }
}

#[test]
fn stereo_44k1_is_resampled_into_contiguous_20ms_packets_anchored_at_the_first_pts() {
    let start = 10 * 44_100;
    let (params, frames) = frames(STEREO_44K1, start);
    assert_eq!((params.sample_rate.get(), params.channels), (44_100, 2));
    let mut t = AacToOpus::new(&params).expect("AAC-LC stereo");
    assert!(t.resamples());
    assert_eq!(t.channels(), 2);
    let packets = transcode_all(&mut t, &frames);

    // Every input sample but less than one packet's worth (plus the
    // resampler's held-back tail) came out.
    let input_48k = frames.len() as i64 * 1024 * 48_000 / 44_100;
    let output = packets.len() as i64 * OPUS_FRAME_SAMPLES as i64;
    assert!(
        output <= input_48k && input_48k - output < 2 * OPUS_FRAME_SAMPLES as i64,
        "{output} of {input_48k} samples"
    );
    assert_contiguous(&packets);
    let resampler_delay = t.resampler.as_ref().map(|r| r.output_delay());
    let resampler_delay = i64::try_from(resampler_delay.expect("resampling")).expect("small");
    assert!(resampler_delay > 0 && resampler_delay <= SINC_LEN as i64);
    assert_eq!(
        packets[0].pts.ticks(),
        10 * 48_000 - resampler_delay - ENCODER_LOOKAHEAD,
        "the first packet plays the anchor frame's first sample"
    );
    for p in &packets {
        assert!(p.data.len() > 1 && p.data.len() <= MAX_OPUS_PACKET);
        // TOC (RFC 6716 §3.1): stereo flag set, code 0 (one frame), 20 ms
        // frame size (configs 3, 7, 11 are SILK 20 ms; 15 hybrid FB 20 ms;
        // 19, 23, 27, 31 CELT 20 ms).
        let toc = p.data[0];
        assert_eq!(toc & 0x04, 0x04, "stereo");
        assert_eq!(toc & 0x03, 0, "one frame per packet");
        assert!(
            [3, 7, 11, 13, 15, 19, 23, 27, 31].contains(&(toc >> 3)),
            "20 ms config, TOC {toc:#x}"
        );
    }
}

#[test]
fn mono_48k_is_not_resampled() {
    let (params, frames) = frames(MONO_48K, 0);
    let mut t = AacToOpus::new(&params).expect("AAC-LC mono");
    assert!(!t.resamples());
    let packets = transcode_all(&mut t, &frames);
    assert_eq!(
        packets.len(),
        frames.len() * AAC_FRAME_SAMPLES / OPUS_FRAME_SAMPLES,
        "every whole 20 ms"
    );
    assert_eq!(packets[0].pts.ticks(), -ENCODER_LOOKAHEAD);
    assert_contiguous(&packets);
    assert!(packets.iter().all(|p| p.data[0] & 0x04 == 0), "mono TOC");
}

#[test]
fn a_gap_in_the_source_restarts_the_timeline_at_the_next_frame() {
    let (params, mut frames) = frames(MONO_48K, 0);
    // Frames 20..30 lost; the rest keep their times.
    frames.drain(20..30);
    let mut t = AacToOpus::new(&params).expect("AAC");
    let mut out = Vec::new();
    for f in &frames[..20] {
        t.push(f, &mut out).expect("good");
    }
    let before = out.len();
    let last_before = out[before - 1].pts.ticks();
    t.push(&frames[20], &mut out).expect("good");
    // The 20 ms held for an incomplete packet were dropped: the frame
    // after the gap is a new anchor, not a continuation.
    let after: Vec<_> = out[before..].iter().map(|p| p.pts.ticks()).collect();
    assert_eq!(after, vec![30 * 1024 - ENCODER_LOOKAHEAD], "{last_before}");
    for f in &frames[21..] {
        t.push(f, &mut out).expect("good");
    }
    assert_contiguous(&out[before..]);

    // A jump back (a restarted source clock) restarts too.
    let mut back = frames[0].clone();
    back.pts = MediaTime::new(0, params.sample_rate);
    let mut more = Vec::new();
    t.push(&back, &mut more).expect("good");
    t.push(&frames[1], &mut more).expect("good");
    assert_eq!(more[0].pts.ticks(), -ENCODER_LOOKAHEAD);

    // An explicit discontinuity (the reader skipped) restarts as well.
    t.discontinuity();
    let mut again = Vec::new();
    t.push(&frames[5], &mut again).expect("good");
    assert_eq!(again[0].pts.ticks(), 5 * 1024 - ENCODER_LOOKAHEAD);
}

#[test]
fn jitter_of_a_few_ticks_keeps_the_timeline() {
    // PES times rebased from 90 kHz are off by a tick now and then.
    let (params, mut frames) = frames(STEREO_44K1, 1000);
    for (i, f) in frames.iter_mut().enumerate() {
        let wobble = [0, 1, -1, 2][i % 4];
        f.pts = f.pts.checked_add_ticks(wobble).expect("fits");
    }
    let mut t = AacToOpus::new(&params).expect("AAC");
    let packets = transcode_all(&mut t, &frames);
    assert_contiguous(&packets);
}

#[test]
fn corrupt_frames_are_refused_and_skipped_never_a_panic() {
    let (params, frames) = frames(STEREO_44K1, 0);
    let mut t = AacToOpus::new(&params).expect("AAC");
    let mut out = Vec::new();
    for f in &frames[..10] {
        t.push(f, &mut out).expect("good");
    }
    let mut refused = 0;
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 7],
        frames[10].data[..frames[10].data.len() / 3].to_vec(),
        (0..400u32).map(|i| (i * 97 % 251) as u8).collect(),
        vec![0; 2000],
    ];
    for (i, data) in bad.into_iter().enumerate() {
        let mut f = frames[10 + i].clone();
        f.data = Bytes::from(data);
        let before = out.len();
        // Some garbage is valid AAC syntax (silence, noise): it decodes.
        if t.push(&f, &mut out).is_err() {
            refused += 1;
            assert_eq!(out.len(), before, "nothing out of a refused frame");
        }
    }
    assert!(refused >= 3, "{refused} of 5 refused");
    // Good frames transcode again afterwards.
    let resume = out.len();
    for f in &frames[15..40] {
        t.push(f, &mut out).expect("good after bad");
    }
    assert!(out.len() - resume >= 20);
}

#[test]
fn only_mono_or_stereo_aac_is_taken() {
    let (mut params, _) = frames(STEREO_44K1, 0);
    params.channels = 6;
    assert!(matches!(
        AacToOpus::new(&params),
        Err(TranscodeError::Channels(6))
    ));
    params.channels = 2;
    params.codec = AudioCodec::Opus;
    assert!(matches!(
        AacToOpus::new(&params),
        Err(TranscodeError::NotAac(AudioCodec::Opus))
    ));
    params.codec = AudioCodec::Aac;
    // HE-AAC (object type 5, SBR) signalled explicitly.
    params.decoder_config = Bytes::from_static(&[0x2b, 0x92, 0x08, 0x00]);
    assert!(matches!(
        AacToOpus::new(&params),
        Err(TranscodeError::Config(_))
    ));
    params.decoder_config = Bytes::new();
    assert!(AacToOpus::new(&params).is_err());
}
