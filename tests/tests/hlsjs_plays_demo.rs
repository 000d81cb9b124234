//! A real browser plays the origin's own player page: headless Chromium
//! (driven by `tests/browser/play.mjs` through playwright-core) opens
//! `/?stream=demo`, hls.js in low-latency mode plays the built-in demo
//! broadcast (H.264 running clock + AAC) for at least 4 s of smooth
//! playback with no fatal hls.js error, the decoded picture is 640×360, and
//! a screenshot of the playing page lands in `tests/artifacts/`.
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
async fn hlsjs_in_chromium_plays_the_demo_stream() {
    let mut origin = start_origin(|_| {}).await;
    origin.spawn(livestack_origin::demo::run(
        origin.streams.clone(),
        "demo".into(),
    ));
    let url = format!("http://{}/?stream=demo", origin.http_addr);
    plays(url, "hlsjs-demo.png").await;
}

/// The same through the edge: the page and hls.js come through it, and
/// every playlist, part and segment request carries the viewer's CAT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hlsjs_in_chromium_plays_through_the_edge_with_a_token() {
    let mut origin = start_origin(|_| {}).await;
    origin.spawn(livestack_origin::demo::run(
        origin.streams.clone(),
        "demo".into(),
    ));
    let edge = livestack_test_harness::start_edge(origin.http_addr).await;
    let keys: livestack_tokens::KeySet = livestack_test_harness::EDGE_TEST_KEYS
        .parse()
        .expect("keys");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let req = livestack_tokens::MintRequest::for_stream(
        "demo",
        livestack_tokens::Access::Play,
        now,
        600,
        b"hlsjs".to_vec(),
    )
    .expect("mint request");
    let token = livestack_tokens::mint_cat(&req, &keys).expect("mint");
    let url = format!("http://{}/?stream=demo&token={token}", edge.http_addr);
    plays(url, "hlsjs-edge.png").await;
    let metrics = livestack_test_harness::hls::HttpClient::new()
        .get(&format!("http://{}/metrics", edge.http_addr))
        .await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains(
            "livestack_edge_component_calls_total{component=\"manifest\",outcome=\"ok\"}"
        ),
        "the playlists went through the manifest component: {metrics}"
    );
    assert!(
        !metrics.contains("livestack_edge_http_responses_total{status=\"401\"}"),
        "no request of the player lacked the token: {metrics}"
    );
}

/// Plays `url` in headless Chromium (tests/browser/play.mjs) and checks
/// that hls.js advanced the video, decoded 640x360 and saved a screenshot.
async fn plays(url: String, screenshot_name: &str) {
    let screenshot = artifacts_dir().join(screenshot_name);
    let (status, report) = play(Player::Page, url, screenshot.clone(), PLAY_SECONDS).await;

    assert_eq!(report["ok"], true, "playback failed: {report:#}");
    assert!(
        status.success(),
        "play.mjs exited with {status}: {report:#}"
    );
    assert!(report["fatal"].is_null(), "hls.js fatal error: {report:#}");
    let advanced = report["advanced"].as_f64().unwrap_or(0.0);
    assert!(
        advanced >= PLAY_SECONDS,
        "video advanced only {advanced} s: {report:#}"
    );
    assert_eq!(report["videoWidth"], 640, "decoded width: {report:#}");
    assert_eq!(report["videoHeight"], 360, "decoded height: {report:#}");

    let size = std::fs::metadata(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", screenshot.display()))
        .len();
    assert!(
        size > 10 * 1024,
        "screenshot {} is only {size} bytes",
        screenshot.display()
    );
}
