//! An SRT publish plays over WHEP with its audio (issue 11): ffmpeg
//! publishes H.264 (libx264, baseline, no B-frames, `-tune zerolatency`:
//! what an OBS user publishing for WebRTC sends) and AAC-LC at 44.1 kHz
//! stereo over SRT; headless Chromium plays `/whep/NAME`: `getStats()`
//! shows H.264 frames decoded and still rising at the end, and an Opus
//! audio track receiving packets and decoding them (samples received, few
//! of them concealed). The AAC was transcoded to Opus on the origin (and
//! resampled to 48 kHz), once for the broadcast, with no frame refused.
//! Screenshot kept in `tests/artifacts/whep-srt-viewer.png`.
//!
//! WebRTC has no B-frames: a source with B-frames is the publisher's
//! to fix (see the README's WebRTC section).
//!
//! Needs ffmpeg (libx264, libsrt), `node`, `/usr/bin/chromium` and `npm
//! ci` in `tests/browser`; a missing one fails the test with a message.

use std::{path::Path, path::PathBuf, process::Command};

use livestack_test_harness::{
    artifacts_dir, browser::play_whep, hls::HttpClient, publish, registry::metric, require,
    start_origin, wait_live, workdir,
};

/// Seconds the viewer plays.
const PLAY_SECONDS: u32 = 12;

/// `seconds` of testsrc (640×360, 25 fps, 2 s GOP, H.264 baseline without
/// B-frames) and a 440 Hz tone (AAC-LC, 44.1 kHz, stereo) as MPEG-TS.
fn encode_webrtc_source(dir: &Path, seconds: u32) -> PathBuf {
    require("ffmpeg");
    let out = dir.join("source-webrtc.ts");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "50",
            "-keyint_min",
            "50",
        ])
        .args(["-sc_threshold", "0", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-ac", "2", "-ar", "44100", "-b:a", "128k"])
        .args(["-f", "mpegts"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed to encode the source");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srt_publish_plays_over_whep_with_opus_audio() {
    let dir = workdir();
    let source = encode_webrtc_source(dir.path(), 60);
    let origin = start_origin(|c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/srtwhep,m=publish", &source);
    wait_live(origin.http_addr, "srtwhep").await;

    let base = format!("http://{}", origin.http_addr);
    let shot = artifacts_dir().join("whep-srt-viewer.png");
    let (status, report) =
        play_whep(base.clone(), "srtwhep".into(), PLAY_SECONDS, shot.clone()).await;
    let metrics = String::from_utf8(
        HttpClient::new()
            .get(&format!("{base}/metrics"))
            .await
            .body
            .to_vec(),
    )
    .expect("utf-8 metrics");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();

    assert!(status.success(), "WHEP viewer: {report}");
    assert_eq!(report["videoCodec"], "video/H264", "{report}");
    assert_eq!(report["width"], 640, "{report}");
    let early = report["framesDecodedEarly"].as_u64().unwrap_or(0);
    let frames = report["framesDecoded"].as_u64().unwrap_or(0);
    assert!(
        early > 0 && frames > early + 25,
        "video decoding went on (25 fps for {PLAY_SECONDS} s): {report}"
    );

    assert_eq!(report["audioCodec"], "audio/opus", "{report}");
    let packets = report["audioPackets"].as_u64().unwrap_or(0);
    // 50 packets a second: at least a quarter of the play time's worth.
    assert!(
        packets >= u64::from(PLAY_SECONDS) * 50 / 4,
        "Opus packets received: {report}"
    );
    let samples = report["totalSamplesReceived"].as_u64().unwrap_or(0);
    let concealed = report["concealedSamples"].as_u64().unwrap_or(u64::MAX);
    assert!(
        samples >= 48_000,
        "the Opus track decoded at least a second: {report}"
    );
    assert!(
        concealed.saturating_mul(5) < samples,
        "under a fifth of the audio concealed: {report}"
    );

    let transcoded = metric(
        &metrics,
        "livestack_origin_webrtc_audio_frames_transcoded_total",
    );
    let refused = metric(
        &metrics,
        "livestack_origin_webrtc_audio_frames_refused_total",
    );
    // 44 100 / 1024 ≈ 43 AAC frames a second, from the viewer's start.
    assert!(
        transcoded >= f64::from(PLAY_SECONDS) * 43.0 / 4.0,
        "AAC frames transcoded: {transcoded}"
    );
    // One transcoder for the broadcast: never more frames than the
    // broadcast had since the viewer came (a second viewer would double it).
    assert!(
        transcoded <= f64::from(PLAY_SECONDS + 10) * 44.0,
        "one transcoder: {transcoded} frames"
    );
    assert_eq!(refused, 0.0, "no AAC frame refused");
    assert_eq!(
        metric(
            &metrics,
            "livestack_origin_webrtc_reordered_video_frames_total"
        ),
        0.0,
        "no B-frames"
    );
    assert!(shot.is_file(), "screenshot kept");
}
