//! Writes a few seconds of the demo source to files for inspection:
//! `cargo run -p livestack-testsrc --example write_files -- OUT.h264 OUT.aac [SECONDS]`,
//! then e.g. `ffplay OUT.h264` or `ffprobe -show_frames OUT.h264`.

use livestack_testsrc::{ClockConfig, ClockSource, adts_frame};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, video, audio, rest @ ..] = &args[..] else {
        eprintln!("usage: write_files OUT.h264 OUT.aac [SECONDS]");
        std::process::exit(2);
    };
    let seconds: u64 = rest
        .first()
        .map_or(Ok(5), |s| s.parse())
        .unwrap_or_else(|e| {
            eprintln!("bad SECONDS: {e}");
            std::process::exit(2);
        });
    let mut src = ClockSource::new(ClockConfig::default()).expect("the default config is valid");
    let start_ms = 1_704_198_896_789; // 2024-01-02T12:34:56.789Z
    let frame_ns = src.video_frame_duration().as_nanos() as i64;
    let mut h264 = Vec::new();
    for n in 0..seconds * 30 {
        let f = src.next_video_frame(start_ms + n as i64 * frame_ns / 1_000_000);
        h264.extend_from_slice(&src.to_annex_b(&f));
    }
    let mut aac = Vec::new();
    for _ in 0..seconds * 48_000 / 1024 {
        aac.extend_from_slice(&adts_frame(&src.next_audio_frame().data));
    }
    std::fs::write(video, h264).expect("write video");
    std::fs::write(audio, aac).expect("write audio");
}
