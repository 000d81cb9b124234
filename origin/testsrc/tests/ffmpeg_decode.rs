//! The stream decodes cleanly and losslessly with the real FFmpeg decoders.
//!
//! Needs `ffmpeg` and `ffprobe` on `PATH` (Debian: `apt-get install
//! ffmpeg`); without them the tests fail with that message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use livestack_media::model::{Frame, TrackParams};
use livestack_testsrc::{BACKGROUND_LUMA, ClockConfig, ClockSource, TEXT_LUMA, adts_frame};

/// 2024-01-02T12:34:56.789Z
const T0_MS: i64 = 1_704_198_896_789;

fn run(tool: &str, args: &[&str]) -> Output {
    match Command::new(tool).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run `{tool}` ({e}): these tests need FFmpeg installed (apt-get install ffmpeg)"
        ),
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("livestack-testsrc-{}-{name}", std::process::id()))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp path is UTF-8")
}

/// Encodes `count` frames 1/30 s apart, returning the Annex B stream and
/// the I420 display picture of every frame.
fn encode(config: ClockConfig, count: usize) -> (ClockSource, Vec<Frame>, Vec<u8>, Vec<Vec<u8>>) {
    let mut src = ClockSource::new(config).expect("valid config");
    let mut annex_b = Vec::new();
    let mut pictures = Vec::new();
    let mut frames = Vec::new();
    for i in 0..count {
        let f = src.next_video_frame(T0_MS + (i as i64 * 1000) / 30);
        annex_b.extend_from_slice(&src.to_annex_b(&f));
        pictures.push(src.picture().expect("picture after a frame").display_i420());
        frames.push(f);
    }
    (src, frames, annex_b, pictures)
}

fn assert_decodes_without_errors(input: &str) {
    let out = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-err_detect",
            "+bitstream+buffer+explode",
            "-f",
            "h264",
            "-i",
            input,
            "-f",
            "null",
            "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffmpeg decode errors: {stderr}"
    );
}

fn decode_i420(input: &str, raw: &Path) -> Vec<u8> {
    let out = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "h264",
            "-i",
            input,
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            path_str(raw),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded = std::fs::read(raw).expect("read decoded frames");
    let _ = std::fs::remove_file(raw);
    decoded
}

fn assert_lossless(decoded: &[u8], pictures: &[Vec<u8>], frame_size: usize) {
    assert_eq!(
        decoded.len(),
        pictures.len() * frame_size,
        "decoded frame count"
    );
    for (i, (got, want)) in decoded.chunks(frame_size).zip(pictures).enumerate() {
        assert!(
            got == &want[..],
            "decoded frame {i} differs from the encoded picture"
        );
    }
}

#[test]
fn h264_decodes_cleanly_and_losslessly() {
    let (src, frames, annex_b, pictures) = encode(ClockConfig::default(), 90);
    assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 3);
    let file = temp_path("clock.h264");
    std::fs::write(&file, &annex_b).expect("write stream");
    let input = path_str(&file);

    // 1. No decoder complaint at all.
    assert_decodes_without_errors(input);

    // 2. Stream properties as ffprobe sees them.
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,width,height,profile,level,r_frame_rate",
            "-of",
            "json",
            "-f",
            "h264",
            input,
        ],
    );
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "\"nb_read_frames\": \"90\"",
        "\"width\": 640",
        "\"height\": 360",
        "\"profile\": \"Constrained Baseline\"",
        "\"level\": 30",
        "\"r_frame_rate\": \"30/1\"",
    ] {
        assert!(json.contains(want), "ffprobe output lacks {want}: {json}");
    }

    // 3. Bit-exact: every decoded frame equals the encoder's picture.
    let raw = temp_path("clock.yuv");
    let decoded = decode_i420(input, &raw);
    assert_lossless(&decoded, &pictures, 640 * 360 * 3 / 2);

    // 4. The first frame shows a grey background and white digits.
    let y = &decoded[..640 * 360];
    assert_eq!(y[0], BACKGROUND_LUMA);
    assert_eq!(y[359 * 640 + 639], BACKGROUND_LUMA);
    let white = y.iter().filter(|&&v| v == TEXT_LUMA).count();
    assert!(white > 3000, "only {white} white pixels");

    // 5. A PNG of a decoded frame, for a human look.
    let png = std::env::temp_dir().join("livestack-testsrc-clock.png");
    let out = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "h264",
            "-i",
            input,
            "-vf",
            "select=eq(n\\,45)",
            "-frames:v",
            "1",
            path_str(&png),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("decoded frame 45 written to {}", png.display());

    let TrackParams::Video(v) = src.video_params() else {
        panic!("video params")
    };
    assert_eq!(v.codec_string, "avc1.42c01e");
    let _ = std::fs::remove_file(&file);
}

/// A width and height that are not multiples of 16 (cropping on both
/// sides), an NTSC frame rate and a 2 s GOP (6-bit frame_num).
#[test]
fn h264_other_size_and_rate_decodes_losslessly() {
    let config = ClockConfig {
        width: 426,
        height: 240,
        frame_rate: (30_000, 1001),
        keyframe_interval: std::time::Duration::from_secs(2),
    };
    let (src, frames, annex_b, pictures) = encode(config, 150);
    assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 3); // 0, 60, 120
    assert_eq!(frames[1].pts.ticks(), 3003);
    assert_eq!(frames[1].pts.timescale().get(), 90_000);
    let file = temp_path("ntsc.h264");
    std::fs::write(&file, &annex_b).expect("write stream");
    let input = path_str(&file);
    assert_decodes_without_errors(input);
    let raw = temp_path("ntsc.yuv");
    let decoded = decode_i420(input, &raw);
    assert_lossless(&decoded, &pictures, 426 * 240 + 2 * 213 * 120);
    let TrackParams::Video(v) = src.video_params() else {
        panic!("video params")
    };
    assert_eq!(v.codec_string, "avc1.42c015"); // 27 × 15 MBs at 29.97 fps: level 2.1
    let _ = std::fs::remove_file(&file);
}

#[test]
fn aac_decodes_cleanly() {
    let mut src = ClockSource::new(ClockConfig::default()).expect("default config");
    // 3 s of audio: at least two beeps plus silence.
    let mut adts = Vec::new();
    for _ in 0..141 {
        let f = src.next_audio_frame();
        adts.extend_from_slice(&adts_frame(&f.data));
    }
    let file = temp_path("clock.aac");
    std::fs::write(&file, &adts).expect("write stream");
    let input = path_str(&file);
    let out = run(
        "ffmpeg",
        &["-v", "error", "-f", "aac", "-i", input, "-f", "null", "-"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffmpeg decode errors: {stderr}"
    );

    // The beeps are audible: decode to 16-bit PCM and find loud samples
    // around each second boundary and silence elsewhere.
    let out = run(
        "ffmpeg",
        &[
            "-v", "error", "-f", "aac", "-i", input, "-f", "s16le", "-ac", "1", "-ar", "48000", "-",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let peak = |from: usize, to: usize| {
        pcm[from..to.min(pcm.len())]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0)
    };
    for second in [1usize, 2] {
        let at = second * 48_000;
        assert!(
            peak(at, at + 4_800) > 2_000,
            "no beep after second {second}"
        );
        assert!(
            peak(at + 9_600, at + 40_000) < 50,
            "noise after the beep of second {second}"
        );
    }
    let TrackParams::Audio(a) = src.audio_params() else {
        panic!("audio params")
    };
    assert_eq!(a.codec_string, "mp4a.40.2");
    let _ = std::fs::remove_file(&file);
}
