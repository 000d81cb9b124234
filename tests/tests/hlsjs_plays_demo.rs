//! A real browser plays the origin's own player page: headless Chromium
//! (driven by `tests/browser/play.mjs` through playwright-core) opens
//! `/?stream=demo`, hls.js in low-latency mode plays the built-in demo
//! broadcast (H.264 running clock + AAC) for at least 4 s of smooth
//! playback with no fatal hls.js error, the decoded picture is 640×360, and
//! a screenshot of the playing page lands in `tests/artifacts/`.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser`; a
//! missing one fails the test with a message saying so.

use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use livestack_e2e::{artifacts_dir, require, start_origin};

/// Playback the browser must see, in seconds of `video.currentTime`.
const PLAY_SECONDS: f64 = 4.0;
/// Backstop for the whole browser run (play.mjs has its own 45 s budget).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

/// One Chromium at a time: two on a 2-core machine starve each other.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let edge = livestack_e2e::start_edge(origin.http_addr).await;
    let keys: livestack_tokens::KeySet = livestack_e2e::EDGE_TEST_KEYS.parse().expect("keys");
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
    let metrics = livestack_e2e::hls::HttpClient::new()
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
    require("node");
    require("chromium");
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: run the README test command (npm ci in tests/browser)",
        browser_dir.display()
    );
    let screenshot = artifacts_dir().join(screenshot_name);
    let _ = std::fs::remove_file(&screenshot);

    let run = {
        let screenshot = screenshot.clone();
        tokio::task::spawn_blocking(move || {
            let _one = BROWSER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            play(&browser_dir, &url, &screenshot)
        })
    };
    let (status, stdout) = run.await.expect("browser run task");
    // No output at all fails the JSON parse below with the full stdout.
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("play.mjs ({status}) printed no JSON report ({e}); stdout: {stdout:?}")
    });
    println!("play.mjs report: {report}");

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

/// Runs `node play.mjs URL SCREENSHOT seconds` in `browser_dir` and returns
/// its exit status and stdout (its stderr goes to the test's output). Kills
/// it after [`BROWSER_TIMEOUT`].
fn play(browser_dir: &Path, url: &str, screenshot: &Path) -> (std::process::ExitStatus, String) {
    let mut child = Command::new("node")
        .arg("play.mjs")
        .arg(url)
        .arg(screenshot)
        .arg(PLAY_SECONDS.to_string())
        .current_dir(browser_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node play.mjs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("play.mjs did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)
            .expect("read play.mjs stdout");
    }
    (status, stdout)
}
