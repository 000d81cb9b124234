//! The Opus we make is Opus to an independent decoder: AAC fixtures are
//! transcoded, written as Ogg/Opus (RFC 7845) and decoded by ffmpeg with
//! libopus (`-c:a libopus`) and with ffmpeg's own Opus decoder, without
//! a single error; the decoded audio has the right length and is the
//! source's tone (its frequency and level), not noise or silence.
//!
//! Needs `ffmpeg` (with libopus, as Debian's) on the PATH.

use std::{io::Write as _, path::Path, process::Command};

use bytes::Bytes;
use livestack_media::{
    adts,
    model::{Frame, MediaTime},
};
use livestack_transcode::{AAC_FRAME_SAMPLES, AacToOpus, ENCODER_LOOKAHEAD, OpusPacket};
use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// Transcodes an ADTS stream; returns the packets and the channel count.
fn transcode(stream: &[u8]) -> (Vec<OpusPacket>, usize, usize) {
    let mut transcoder = None;
    let mut packets = Vec::new();
    let mut frames = 0;
    for (i, f) in adts::frames(stream).enumerate() {
        let f = f.expect("a good ADTS frame");
        let params = f.header.audio_params().expect("AAC params");
        let t = transcoder.get_or_insert_with(|| AacToOpus::new(&params).expect("AAC-LC"));
        let pts = MediaTime::new(i as i64 * AAC_FRAME_SAMPLES as i64, params.sample_rate);
        let frame = Frame {
            pts,
            dts: pts,
            duration: None,
            keyframe: true,
            data: Bytes::copy_from_slice(f.payload),
        };
        t.push(&frame, &mut packets).expect("transcodes");
        frames += 1;
    }
    let channels = transcoder.expect("frames").channels();
    (packets, channels, frames)
}

/// Writes `packets` as an Ogg/Opus file (RFC 7845 §5: ID header, comment
/// header, then one audio packet per page with its end granule).
fn write_ogg_opus(path: &Path, packets: &[OpusPacket], channels: usize, source_rate: u32) {
    let file = std::fs::File::create(path).expect("create");
    let mut w = PacketWriter::new(std::io::BufWriter::new(file));
    let serial = 0x6c73_7472;
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(u8::try_from(channels).expect("1 or 2"));
    head.extend_from_slice(
        &u16::try_from(ENCODER_LOOKAHEAD)
            .expect("small")
            .to_le_bytes(),
    );
    head.extend_from_slice(&source_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0
    w.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
        .expect("write");
    let mut tags = b"OpusTags".to_vec();
    let vendor = b"livestack-transcode";
    tags.extend_from_slice(&u32::try_from(vendor.len()).expect("short").to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    w.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
        .expect("write");
    let mut granule = 0u64;
    for (i, p) in packets.iter().enumerate() {
        granule += p.samples as u64;
        let end = if i + 1 == packets.len() {
            PacketWriteEndInfo::EndStream
        } else {
            PacketWriteEndInfo::EndPage
        };
        w.write_packet(p.data.to_vec(), serial, end, granule)
            .expect("write");
    }
    w.into_inner().flush().expect("flush");
}

/// ffmpeg's decode of `path` with `decoder`, as 16-bit PCM at 48 kHz:
/// (samples per channel, interleaved samples, ffmpeg's error output).
fn decode(path: &Path, decoder: &str, channels: usize) -> (usize, Vec<i16>, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-c:a", decoder, "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ar", "48000", "-"])
        .output()
        .unwrap_or_else(|e| panic!("ffmpeg is needed for this test: {e}"));
    assert!(out.status.success(), "ffmpeg {decoder}: {:?}", out.status);
    let pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (
        pcm.len() / channels,
        pcm,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Frequency (Hz) and RMS level of the first channel of `pcm` over the
/// middle half (away from the encoders' start-up).
fn tone(pcm: &[i16], channels: usize) -> (f64, f64) {
    let mono: Vec<f64> = pcm
        .iter()
        .step_by(channels)
        .map(|s| f64::from(*s))
        .collect();
    let mid = &mono[mono.len() / 4..mono.len() * 3 / 4];
    let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    let seconds = mid.len() as f64 / 48_000.0;
    let rms = (mid.iter().map(|s| s * s).sum::<f64>() / mid.len() as f64).sqrt();
    (crossings as f64 / seconds, rms)
}

fn check(fixture: &str, source_rate: u32, hz: f64) {
    let stream = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(fixture),
    )
    .expect("fixture");
    let (packets, channels, frames) = transcode(&stream);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("in.aac"), &stream).expect("write");
    let path = dir.path().join("out.opus");
    write_ogg_opus(&path, &packets, channels, source_rate);

    let source_seconds = (frames * AAC_FRAME_SAMPLES) as f64 / f64::from(source_rate);
    // The source's level as ffmpeg decodes the AAC itself.
    let (_, source_pcm, _) = decode(&dir.path().join("in.aac"), "aac", channels);
    let (_, source_rms) = tone(&source_pcm, channels);
    for decoder in ["libopus", "opus"] {
        let (samples, pcm, errors) = decode(&path, decoder, channels);
        assert!(errors.is_empty(), "{decoder} on {fixture}: {errors}");
        // The whole stream minus the pre-skip (RFC 7845 §4.2).
        let expected = packets.len() * 960 - usize::try_from(ENCODER_LOOKAHEAD).expect("small");
        assert_eq!(samples, expected, "{decoder} on {fixture}: decoded length");
        let seconds = samples as f64 / 48_000.0;
        assert!(
            (source_seconds - seconds).abs() < 0.05,
            "{decoder} on {fixture}: {seconds} s decoded of {source_seconds} s"
        );
        let (freq, rms) = tone(&pcm, channels);
        assert!(
            (freq - hz).abs() < hz * 0.01,
            "{decoder} on {fixture}: {freq} Hz, {hz} Hz expected"
        );
        assert!(
            (rms / source_rms - 1.0).abs() < 0.1,
            "{decoder} on {fixture}: RMS {rms}, the AAC source's is {source_rms}"
        );
    }
}

#[test]
fn ffmpeg_decodes_our_opus_from_44k1_stereo_aac() {
    check("sine440-44k1-stereo.aac", 44_100, 440.0);
}

#[test]
fn ffmpeg_decodes_our_opus_from_48k_mono_aac() {
    check("sine1k-48k-mono.aac", 48_000, 1000.0);
}
