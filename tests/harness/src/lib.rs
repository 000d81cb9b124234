//! Harness for the end-to-end tests (`tests/tests/`) and the origin
//! benchmarks: an in-process origin and edge on free loopback ports, real
//! ffmpeg publishers, ffprobe frame counting, an LL-HLS following client
//! that downloads every part and segment, headless-browser players and an
//! origin registry written by the test.
//!
//! It builds the origin, the edge host (wasmtime) and its components, so a
//! crate's own tests (the edge cache's, say) do not use it: they bring the
//! small fake they need.
//!
//! The external tools are installed by the README's test command; a missing
//! tool fails the test with a message saying so (never a skip).

pub mod browser;
pub mod hls;
pub mod impair;
pub mod quic;
pub mod registry;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use livestack_origin::{
    Origin,
    config::OriginConfig,
    control::{ControlPlane, MemoryControlPlane},
};

/// Panics with an install hint when `tool` is not on PATH.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run the README's test command (it installs ffmpeg, chromium, ...)"
    );
}

/// Starts an origin on free loopback ports with `tweak` applied to the
/// defaults (but no reconnect grace) and an in-memory control plane
/// holding the config's keys.
pub async fn start_origin(tweak: impl FnOnce(&mut OriginConfig)) -> Origin {
    start_origin_in(MemoryControlPlane::new(), tweak).await
}

/// As [`start_origin`], as a node of the deployment whose control plane is
/// `control` (several origins sharing one Redis).
pub async fn start_origin_in(
    control: Arc<dyn ControlPlane>,
    tweak: impl FnOnce(&mut OriginConfig),
) -> Origin {
    let mut config = OriginConfig {
        srt: "127.0.0.1:0".parse().expect("addr"),
        http: "127.0.0.1:0".parse().expect("addr"),
        ..OriginConfig::default()
    };
    // Playlists end as soon as the publisher is gone, so that tests that
    // follow a stream to its EXT-X-ENDLIST do not wait out the reconnect
    // grace; the reconnect test sets it.
    config.hls.reconnect_grace = Duration::ZERO;
    tweak(&mut config);
    // The origin seeds the configuration's stream keys into it at start.
    Origin::start(&config, control)
        .await
        .expect("origin starts")
}

/// Video codec of an encoded test source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// libx264, High profile, 2 B-frames.
    H264,
    /// libx265, 2 B-frames.
    H265,
}

/// Encodes `seconds` of testsrc (640x360, 25 fps, 2 s GOP, B-frames) + a
/// sine (AAC, 48 kHz) into an MPEG-TS file in `dir`.
pub fn encode_source(dir: &Path, codec: VideoCodec, seconds: u32) -> PathBuf {
    encode_source_sized(dir, codec, seconds, (640, 360))
}

/// As [`encode_source`], `width`×`height` pixels.
pub fn encode_source_sized(
    dir: &Path,
    codec: VideoCodec,
    seconds: u32,
    (width, height): (u32, u32),
) -> PathBuf {
    require("ffmpeg");
    let out = dir.join(format!("source-{codec:?}-{width}x{height}.ts"));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc=size={width}x{height}:rate=25"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()]);
    match codec {
        VideoCodec::H264 => cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-bf",
            "2",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ]),
        VideoCodec::H265 => cmd.args([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "bframes=2:keyint=50:min-keyint=50:scenecut=0:log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-tag:v",
            "hvc1",
        ]),
    };
    cmd.args(["-c:a", "aac", "-b:a", "96k", "-f", "mpegts"])
        .arg(&out);
    let status = cmd.status().expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed to encode the source");
    out
}

/// Frames in the first stream of `kind` (`v` or `a`) of a media file, as
/// decoded by ffprobe (`-count_frames`).
pub fn count_frames(path: &Path, kind: &str) -> u64 {
    require("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams"])
        .arg(format!("{kind}:0"))
        .args([
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=nokey=1:noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    // MPEG-TS files list the stream once per program too: take the first.
    text.lines()
        .next()
        // No output at all fails the parse below with the ffprobe text.
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe gave no frame count for {path:?}: {text:?}"))
}

/// Overall bit rate of a media file in bit/s, as ffprobe reports it
/// (container overhead included); `None` when ffprobe cannot run or
/// reports none.
pub fn bit_rate(path: &Path) -> Option<u64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=bit_rate"])
        .args(["-of", "default=nokey=1:noprint_wrappers=1"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Decode errors ffmpeg reports for a file (empty when it decodes cleanly).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts ffmpeg publishing every stream of `source` (`-map 0`: several
/// audio languages stay several PIDs) in real time (`-re`, stream copy) to
/// the SRT listener at `srt` with `streamid`.
pub fn publish(srt: std::net::SocketAddr, streamid: &str, source: &Path) -> Child {
    publish_with_latency(srt, streamid, source, Duration::from_millis(120))
}

/// As [`publish`], with an SRT latency (`SRTO_LATENCY`, the receiver's
/// TSBPD delay and so its budget for retransmissions and for its own
/// scheduling stalls) of `latency` instead of 120 ms.
pub fn publish_with_latency(
    srt: std::net::SocketAddr,
    streamid: &str,
    source: &Path,
    latency: Duration,
) -> Child {
    require("ffmpeg");
    let url = srt_url_with_latency(srt, streamid, latency);
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(source)
        .args(["-map", "0", "-c", "copy", "-f", "mpegts"])
        .arg(url)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg")
}

/// Publishes `source` over Media over QUIC with moq-dev's CLI: `ffmpeg
/// -re` feeds MPEG-TS to `moq --connect URL --broadcast NAME import ts`,
/// which trusts the certificate with SHA-256 `hash` and, with `version`,
/// offers only that MoQ version (`--connect-version`). Returns (ffmpeg,
/// moq); the caller ends them.
pub fn moq_import_ts(
    url: &str,
    hash: &str,
    name: &str,
    source: &Path,
    version: Option<&str>,
) -> (Child, Child) {
    require("moq");
    require("ffmpeg");
    let mut feed = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(source)
        .args(["-c", "copy", "-f", "mpegts", "-pes_payload_size", "0"])
        .args(["-muxdelay", "0", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");
    let stdin = feed.stdout.take().expect("ffmpeg stdout");
    let mut moq = Command::new("moq");
    moq.args(["--connect", url, "--connect-tls-fingerprint", hash]);
    if let Some(v) = version {
        moq.args(["--connect-version", v]);
    }
    let import = moq
        .args(["--broadcast", name, "import", "ts"])
        .env("RUST_LOG", "error")
        .stdin(stdin)
        .spawn()
        .expect("spawn moq");
    (feed, import)
}

/// Waits until stream `name` of the origin at `http` answers its
/// multivariant playlist with 200 (the packager has its first parts);
/// panics after 30 s.
pub async fn wait_live(http: std::net::SocketAddr, name: &str) {
    let client = hls::HttpClient::new();
    let url = format!("http://{http}/live/{name}/index.m3u8");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client.get(&url).await.status != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream {name} did not go live within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An `srt://` URL for ffmpeg's libsrt caller with a streamid.
///
/// `linger=2`: libsrt's live mode closes without waiting for the last
/// packets to be acknowledged (SRTO_LINGER 0), which drops the final ~100 ms
/// of a file published with `-re`; with linger the caller delivers all it
/// sent, so frame counts can be compared exactly.
pub fn srt_url(srt: std::net::SocketAddr, streamid: &str) -> String {
    srt_url_with_latency(srt, streamid, Duration::from_millis(120))
}

/// As [`srt_url`], with an SRT latency of `latency` (ffmpeg's `latency`
/// option is in microseconds).
pub fn srt_url_with_latency(
    srt: std::net::SocketAddr,
    streamid: &str,
    latency: Duration,
) -> String {
    format!(
        "srt://{}:{}?mode=caller&latency={}&pkt_size=1316&linger=2&streamid={}",
        srt.ip(),
        srt.port(),
        latency.as_micros(),
        streamid
    )
}

/// `tests/` in the repository: the end-to-end tests, with the browser and
/// jco players they drive (this crate is `tests/harness`).
pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/harness has a parent")
        .to_path_buf()
}

/// A temporary directory for one test's files.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("livestack-e2e-")
        .tempdir()
        .expect("tempdir")
}

/// Where tests keep artifacts worth looking at (screenshots):
/// `tests/artifacts/` in the repository.
pub fn artifacts_dir() -> PathBuf {
    let dir = tests_dir().join("artifacts");
    std::fs::create_dir_all(&dir).expect("create artifacts dir");
    dir
}

/// HS256 key configuration the edge tests use (`livestack-tokens` format).
pub const EDGE_TEST_KEYS: &str = "k1:HS256:ZWRnZS10ZXN0LWtleS0wMTIzNDU2Nzg5MDEyMzQ1Njc4OTAx";

/// Starts an edge on a free loopback port in front of `origin` with
/// [`EDGE_TEST_KEYS`] and the embedded components.
pub async fn start_edge(origin: std::net::SocketAddr) -> livestack_edge_server::Edge {
    start_edge_with(origin, |_| {}).await
}

/// As [`start_edge`], with `tweak` applied to the configuration (a control
/// plane, a registry refresh interval, ...).
pub async fn start_edge_with(
    origin: std::net::SocketAddr,
    tweak: impl FnOnce(&mut livestack_edge_server::EdgeConfig),
) -> livestack_edge_server::Edge {
    let mut config = livestack_edge_server::EdgeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        format!("http://{origin}").parse().expect("origin url"),
        EDGE_TEST_KEYS,
    );
    tweak(&mut config);
    livestack_edge_server::Edge::start(config)
        .await
        .expect("edge starts")
}
