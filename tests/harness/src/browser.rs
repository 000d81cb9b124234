//! Headless Chromium driven by `tests/browser/play.mjs` (playwright-core):
//! a player plays a URL and play.mjs reports what the `<video>` did.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser`; a
//! missing one fails the test with a message saying so.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Backstop for one browser run (play.mjs has its own 45 s budget).
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

/// One Chromium at a time in a test binary: two on a 2-core machine starve
/// each other.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The player play.mjs drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Player {
    /// The URL is a player page (the origin's own: hls.js).
    Page,
    /// The URL is a multivariant playlist, played by Shaka Player
    /// (`tests/browser/node_modules/shaka-player`) in low-latency mode.
    Shaka,
}

impl Player {
    fn arg(self) -> &'static str {
        match self {
            Player::Page => "page",
            Player::Shaka => "shaka",
        }
    }

    /// The npm package the player needs besides playwright-core.
    fn package(self) -> Option<&'static str> {
        match self {
            Player::Page => None,
            Player::Shaka => Some("shaka-player"),
        }
    }
}

/// `tests/browser`.
pub fn browser_dir() -> PathBuf {
    crate::tests_dir().join("browser")
}

/// Plays `url` with `player` in headless Chromium until `seconds` of
/// smooth playback (or play.mjs gives up), saving a screenshot at
/// `screenshot`; returns play.mjs's exit status and its JSON report (see
/// play.mjs). Panics when a tool is missing or play.mjs printed no report.
pub async fn play(
    player: Player,
    url: String,
    screenshot: PathBuf,
    seconds: f64,
) -> (std::process::ExitStatus, serde_json::Value) {
    crate::require("node");
    crate::require("chromium");
    let dir = browser_dir();
    for package in std::iter::once("playwright-core").chain(player.package()) {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "{} has no node_modules/{package}: run the README test command (npm ci in tests/browser)",
            dir.display()
        );
    }
    let args = vec![
        url,
        screenshot.display().to_string(),
        seconds.to_string(),
        player.arg().to_owned(),
    ];
    run_script("play.mjs", &screenshot, args).await
}

/// Plays `url`, the origin's Media over QUIC page (`/moq.html?stream=NAME`:
/// `@moq/watch` over WebTransport), in headless Chromium until its video
/// decoder decoded `frames` frames (or moq.mjs gives up), saving a
/// screenshot at `screenshot`; returns moq.mjs's exit status and its JSON
/// report (see moq.mjs).
pub async fn play_moq(
    url: String,
    screenshot: PathBuf,
    frames: u32,
) -> (std::process::ExitStatus, serde_json::Value) {
    crate::require("node");
    crate::require("chromium");
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: run the README test command (npm ci in tests/browser)",
        dir.display()
    );
    let args = vec![url, screenshot.display().to_string(), frames.to_string()];
    run_script("moq.mjs", &screenshot, args).await
}

/// Publishes Chromium's fake camera and microphone over WHIP to
/// `origin/whip/NAME` for `seconds`, then DELETEs the session; returns
/// whip.mjs's exit status and its JSON report (see whip.mjs).
pub async fn publish_whip(
    origin: String,
    name: String,
    seconds: u32,
) -> (std::process::ExitStatus, serde_json::Value) {
    publish_whip_with(origin, name, seconds, false).await
}

/// As [`publish_whip`]; `simulcast`: the camera at 1280x720 in three
/// layers (RIDs `h`, `m`, `l`: full, half and quarter size).
pub async fn publish_whip_with(
    origin: String,
    name: String,
    seconds: u32,
    simulcast: bool,
) -> (std::process::ExitStatus, serde_json::Value) {
    crate::require("node");
    crate::require("chromium");
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: run the README test command (npm ci in tests/browser)",
        dir.display()
    );
    let nothing = std::env::temp_dir().join("livestack-no-screenshot.png");
    let mut args = vec![origin, name, seconds.to_string()];
    if simulcast {
        args.push("simulcast".into());
    }
    run_script("whip.mjs", &nothing, args).await
}

/// In one Chromium: publishes the fake camera over WHIP to
/// `origin/whip/NAME`, plays `origin/whep/NAME` in a second page for
/// `seconds`, screenshots the viewer at `screenshot`; returns whep.mjs's
/// exit status and its JSON report (see whep.mjs).
///
/// `tokens`: the publish and the play token each POST (and DELETE)
/// presents as `Authorization: Bearer`; `origin` may then be an edge that
/// redirects to the origin node.
pub async fn whip_to_whep(
    origin: String,
    name: String,
    seconds: u32,
    screenshot: PathBuf,
    tokens: Option<(String, String)>,
) -> (std::process::ExitStatus, serde_json::Value) {
    crate::require("node");
    crate::require("chromium");
    let mut args = vec![
        origin,
        name,
        seconds.to_string(),
        screenshot.display().to_string(),
    ];
    if let Some((publish, play)) = tokens {
        args.extend([publish, play]);
    }
    run_script("whep.mjs", &screenshot, args).await
}

/// In one Chromium: alice, bob and carol join SFU room `room` from the
/// origin's room page, then chat, bob leaves and carol's page crashes
/// (see `tests/browser/room.mjs`); screenshot of alice's page at
/// `screenshot`. Returns room.mjs's exit status and its JSON report.
pub async fn room(
    origin: String,
    room: String,
    screenshot: PathBuf,
) -> (std::process::ExitStatus, serde_json::Value) {
    crate::require("node");
    crate::require("chromium");
    let args = vec![origin, room, screenshot.display().to_string()];
    run_script("room.mjs", &screenshot, args).await
}

/// In one Chromium: publishes the fake camera at 720p in three simulcast
/// layers over WHIP to `origin/whip/NAME`, plays `origin/whep/NAME` in a
/// second page through the UDP relay at `relay` (the answer's candidate
/// rewritten to it) and samples the decoded width and frames every 500 ms
/// for `seconds` (see `tests/browser/simulcast.mjs`).
pub async fn simulcast_through_relay(
    origin: String,
    name: String,
    relay: std::net::SocketAddr,
    seconds: u32,
    screenshot: PathBuf,
) -> (std::process::ExitStatus, serde_json::Value) {
    crate::require("node");
    crate::require("chromium");
    let args = vec![
        origin,
        name,
        relay.to_string(),
        seconds.to_string(),
        screenshot.display().to_string(),
    ];
    run_script("simulcast.mjs", &screenshot, args).await
}

/// Plays `origin/whep/NAME` alone (a WHEP viewer receiving video and
/// audio) in headless Chromium for `seconds`, screenshots it at
/// `screenshot`, DELETEs the session; returns whep_play.mjs's exit status
/// and its JSON report (`getStats()` early and at the end: video frames
/// decoded, audio packets, samples and concealment; see whep_play.mjs).
pub async fn play_whep(
    origin: String,
    name: String,
    seconds: u32,
    screenshot: PathBuf,
) -> (std::process::ExitStatus, serde_json::Value) {
    crate::require("node");
    crate::require("chromium");
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: run the README test command (npm ci in tests/browser)",
        dir.display()
    );
    let args = vec![
        origin,
        name,
        seconds.to_string(),
        screenshot.display().to_string(),
    ];
    run_script("whep_play.mjs", &screenshot, args).await
}

/// Runs `node SCRIPT ARGS...` in `tests/browser` (one browser at a time)
/// and parses the JSON report on the last line of its stdout.
async fn run_script(
    script: &'static str,
    screenshot: &Path,
    args: Vec<String>,
) -> (std::process::ExitStatus, serde_json::Value) {
    let _ = std::fs::remove_file(screenshot);
    let dir = browser_dir();
    let run = tokio::task::spawn_blocking(move || {
        let _one = BROWSER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        run_node(&dir, script, &args)
    });
    let (status, stdout) = run.await.expect("browser run task");
    // No output at all is an empty line here on purpose: the JSON parse
    // below then fails and the panic shows the whole stdout.
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("{script} ({status}) printed no JSON report ({e}); stdout: {stdout:?}")
    });
    println!("{script} report: {report}");
    (status, report)
}

/// Runs `node SCRIPT ARGS...` in `dir` and returns its exit status and
/// stdout (its stderr goes to the test's output). Kills it after
/// [`BROWSER_TIMEOUT`].
fn run_node(dir: &Path, script: &str, args: &[String]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn node {script}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)
            .expect("read the script's stdout");
    }
    (status, stdout)
}
