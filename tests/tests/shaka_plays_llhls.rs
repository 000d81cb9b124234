//! A second, independent LL-HLS player plays our playlists: Shaka Player 5
//! (pinned in `tests/browser/package.json`) with
//! `streaming.lowLatencyMode: true`, in headless Chromium driven by
//! `tests/browser/play.mjs`, loads the built-in demo broadcast's
//! multivariant playlist (H.264 running clock + AAC rendition, parts,
//! preload hints, rendition reports), plays at least 4 s smoothly with no
//! critical Shaka error, and reports its latency behind the live edge from
//! `EXT-X-PROGRAM-DATE-TIME` (wall clock minus the playhead's date), which
//! must be finite and positive. hls.js plays the same stream in
//! `hlsjs_plays_demo.rs`.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser`; a
//! missing one fails the test with a message saying so.

use livestack_test_harness::{
    artifacts_dir,
    browser::{Player, play},
    start_origin,
};

/// Playback the browser must see, in seconds of `video.currentTime`.
const PLAY_SECONDS: f64 = 4.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaka_in_low_latency_mode_plays_the_live_stream() {
    let mut origin = start_origin(|_| {}).await;
    origin.spawn(livestack_origin::demo::run(
        origin.streams.clone(),
        "demo".into(),
    ));
    let url = format!("http://{}/live/demo/index.m3u8", origin.http_addr);
    // Shaka joins a stream that has been live for a few segments. Loaded in
    // the first seconds of a stream (one complete segment), Shaka 5.2
    // rejects `player.load` with "Cannot read properties of undefined
    // (reading 'match')" — an open issue of ours or theirs, written down in
    // the README; hls.js joins at once (hlsjs_plays_demo).
    let media = format!("http://{}/live/demo/video.m3u8", origin.http_addr);
    let client = livestack_test_harness::hls::HttpClient::new();
    let mut segments = 0;
    for _ in 0..300 {
        let r = client.get(&media).await;
        if r.status == 200 {
            segments = String::from_utf8_lossy(&r.body).matches("#EXTINF").count();
            if segments >= 3 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(segments >= 3, "the demo stream never had 3 segments");
    let screenshot = artifacts_dir().join("shaka-llhls.png");
    let (status, report) = play(Player::Shaka, url, screenshot.clone(), PLAY_SECONDS).await;

    assert!(
        report["fatal"].is_null(),
        "Shaka critical error: {report:#}"
    );
    assert_eq!(report["ok"], true, "playback failed: {report:#}");
    assert!(
        status.success(),
        "play.mjs exited with {status}: {report:#}"
    );
    let advanced = report["advanced"].as_f64().unwrap_or(0.0);
    assert!(
        advanced >= PLAY_SECONDS,
        "video advanced only {advanced} s: {report:#}"
    );
    assert_eq!(report["videoWidth"], 640, "decoded width: {report:#}");
    assert_eq!(report["videoHeight"], 360, "decoded height: {report:#}");
    // Not a bound on it: only that Shaka placed the playhead on the
    // program-date-time timeline, behind the live edge.
    let latency = report["latency"].as_f64();
    assert!(
        latency.is_some_and(|l| l.is_finite() && l > 0.0),
        "latency from program-date-time must be finite and positive: {report:#}"
    );
    println!("Shaka latency behind the program-date-time of the playhead: {latency:?} s");

    let size = std::fs::metadata(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", screenshot.display()))
        .len();
    // The demo's frame (grey, a white clock) compresses to about 7 KiB; a
    // blank page is under 2 KiB.
    assert!(
        size > 4 * 1024,
        "screenshot {} is only {size} bytes",
        screenshot.display()
    );
}
