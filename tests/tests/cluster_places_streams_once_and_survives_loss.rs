//! Several cooperating nodes on one machine, as separate `livestack`
//! processes on loopback ports around one real `redis-server`: two
//! regions, three origins, one edge. Publishers are real ffmpeg SRT
//! callers; viewers follow LL-HLS through the edge and ffprobe counts what
//! they received.
//!
//! Heartbeats are 500 ms with a 1.5 s TTL, so that node loss is noticed in
//! seconds; every wait below is a bounded poll for a state, never a fixed
//! sleep standing in for one.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use livestack_control::testing::RedisServer;
use livestack_test_harness::{
    EDGE_TEST_KEYS, VideoCodec, count_frames, encode_source,
    hls::{Followed, HttpClient, follow},
    publish,
    registry::play_token,
    workdir,
};

const ADMIN_TOKEN: &str = "admin-token-for-the-cluster-tests";
const HEARTBEAT: &str = "500ms";
const HEARTBEAT_TTL: Duration = Duration::from_millis(1500);
/// Washington, WGS 84: a viewer in region B (`us-east`).
const VIEWER_IN_US: &str = "38.90,-77.04";

/// The machine has few cores: one cluster at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A `livestack` process with what it printed.
struct Proc {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(args: &[String], ready: &str) -> (Self, Vec<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_livestack-under-test"))
            .args(args)
            .env("LIVESTACK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn livestack");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let out = child.stdout.take().expect("stdout");
            let buf = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    buf.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        {
            let err = child.stderr.take().expect("stderr");
            let buf = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    buf.lock().unwrap().push_str(&format!("{line}\n"));
                }
            });
        }
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with(ready);
                    lines.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => panic!(
                    "livestack {args:?} did not print {ready:?}; stderr:\n{}",
                    stderr.lock().unwrap()
                ),
            }
        }
        (
            Self {
                child,
                stdout,
                stderr,
            },
            lines,
        )
    }

    fn log(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the node vanishes without deregistering.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn addr_after(lines: &[String], prefix: &str) -> SocketAddr {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|a| a.trim().trim_start_matches("http://"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:#?}"))
}

struct Origin {
    proc: Proc,
    id: String,
    srt: SocketAddr,
    http: SocketAddr,
    admin: SocketAddr,
}

fn origin(id: &str, region: &str, location: &str, redis: &str) -> Origin {
    origin_with(id, region, location, redis, &[])
}

fn origin_with(id: &str, region: &str, location: &str, redis: &str, extra: &[&str]) -> Origin {
    let mut args: Vec<String> = [
        "origin",
        "--node-id",
        id,
        "--region",
        region,
        "--location",
        location,
        "--redis",
        redis,
        "--srt",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--admin-token",
        ADMIN_TOKEN,
        "--heartbeat",
        HEARTBEAT,
        "--heartbeat-ttl",
        "1500ms",
        "--auth-grace",
        "5m",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let (proc, lines) = Proc::spawn(&args, "HTTP listening on");
    Origin {
        id: id.to_owned(),
        srt: addr_after(&lines, "SRT listening on "),
        http: addr_after(&lines, "HTTP listening on "),
        admin: addr_after(&lines, "admin API listening on "),
        proc,
    }
}

struct Edge {
    _proc: Proc,
    http: SocketAddr,
}

fn edge(redis: &str, fallback: &Origin) -> Edge {
    let args: Vec<String> = [
        "edge",
        "--http",
        "127.0.0.1:0",
        "--origin",
        &format!("http://{}", fallback.http),
        "--redis",
        redis,
        "--registry-refresh",
        "250ms",
        "--token-keys",
        EDGE_TEST_KEYS,
    ]
    .map(str::to_owned)
    .to_vec();
    let (proc, lines) = Proc::spawn(&args, "HTTP listening on");
    Edge {
        http: addr_after(&lines, "HTTP listening on "),
        _proc: proc,
    }
}

/// `livestack admin` against `node` (with `token`, if any): success and
/// stdout, or failure and stderr.
fn admin_as(node: &Origin, token: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_livestack-under-test"));
    cmd.arg("admin")
        .arg("--url")
        .arg(format!("http://{}", node.admin))
        .env_remove("LIVESTACK_ADMIN_TOKEN");
    if let Some(t) = token {
        cmd.arg("--token").arg(t);
    }
    let out = cmd.args(args).output().expect("run livestack admin");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn admin(node: &Origin, args: &[&str]) -> serde_json::Value {
    let out = admin_as(node, Some(ADMIN_TOKEN), args)
        .unwrap_or_else(|e| panic!("livestack admin {args:?} failed: {e}"));
    if out.trim().is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("admin {args:?}: {e}: {out}"))
}

/// Like [`admin`], `None` when the call fails (the control plane may be
/// returning).
fn try_admin(node: &Origin, args: &[&str]) -> Option<serde_json::Value> {
    let out = admin_as(node, Some(ADMIN_TOKEN), args).ok()?;
    serde_json::from_str(&out).ok()
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of `series` (a metric name with its labels, as exposed) in
/// `node`'s `/metrics`; 0 when absent or unreadable.
fn metric(node: &Origin, series: &str) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut tcp) = std::net::TcpStream::connect(node.http) else {
        return 0.0;
    };
    let mut text = String::new();
    let _ = write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let _ = tcp.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// SRT connections refused because the key does not open the stream.
const SRT_FORBIDDEN: &str = r#"livestack_origin_srt_connections_total{result="forbidden"}"#;
/// SRT connections refused because the control plane cannot decide.
const SRT_UNAVAILABLE: &str = r#"livestack_origin_srt_connections_total{result="unavailable"}"#;
/// SRT connections refused because another session holds the stream.
const SRT_CONFLICT: &str = r#"livestack_origin_srt_connections_total{result="conflict"}"#;
/// Publishers connected now.
const PUBLISHERS: &str = "livestack_origin_publishers";

/// The node holding `stream`, per the admin API.
fn holder(node: &Origin, stream: &str) -> Option<String> {
    try_admin(node, &["streams"])?
        .as_array()?
        .iter()
        .find(|p| p["stream"] == stream)
        .and_then(|p| p["node_id"].as_str().map(str::to_owned))
}

/// True when the admin API answers and lists no placement of `stream`.
fn released(node: &Origin, stream: &str) -> bool {
    try_admin(node, &["streams"])
        .and_then(|v| v.as_array().cloned())
        .is_some_and(|a| a.iter().all(|p| p["stream"] != stream))
}

fn create_key(node: &Origin, stream: &str) -> (String, String) {
    let k = admin(node, &["keys", "create", "--stream", stream]);
    (
        k["id"].as_str().expect("key id").to_owned(),
        k["secret"].as_str().expect("key secret").to_owned(),
    )
}

fn streamid(stream: &str, secret: &str) -> String {
    format!("#!::r=live/{stream},m=publish,t={secret}")
}

/// The origin node that answered an edge response.
fn served_by(r: &livestack_test_harness::hls::Fetched) -> Option<String> {
    r.headers
        .get("x-livestack-origin-node")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn frames_of(dir: &std::path::Path, name: &str, f: &Followed) -> u64 {
    let path = dir.join(name);
    let mut bytes = Vec::new();
    if let Some(init) = f.inits.values().next() {
        bytes.extend_from_slice(init);
    }
    for (_, data) in f.segments.values() {
        bytes.extend_from_slice(data);
    }
    std::fs::write(&path, bytes).expect("write followed media");
    count_frames(&path, "v")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

/// A publisher lands on an origin in region A; a viewer in region B is
/// routed by the edge to the node that holds the stream and plays every
/// frame; the registry shows every node's load. The admin API refuses an
/// unauthenticated call, and a revoked key cannot publish again.
#[test]
fn viewer_in_region_b_plays_a_stream_held_in_region_a() {
    let _serial = serial();
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 10);
    let published = count_frames(&source, "v");
    let redis = RedisServer::start();
    let url = redis.url();
    let eu1 = origin("origin-eu-1", "eu-west", "48.86,2.35", &url);
    let eu2 = origin("origin-eu-2", "eu-west", "48.86,2.35", &url);
    let us1 = origin("origin-us-1", "us-east", "38.90,-77.04", &url);
    // The edge's fallback origin is in region B: only the placement sends
    // viewers to region A.
    let edge = edge(&url, &us1);

    // Admin: unauthenticated and wrong-token calls are refused.
    let refused = admin_as(&eu1, None, &["nodes"]).expect_err("no token must be refused");
    assert!(refused.contains("401"), "{refused}");
    let refused = admin_as(&eu1, Some("not-the-admin-token"), &["keys", "list"])
        .expect_err("a wrong token must be refused");
    assert!(refused.contains("401"), "{refused}");

    let nodes = wait_for("three registered nodes", Duration::from_secs(20), || {
        let n = admin(&us1, &["nodes"]);
        (n.as_array()?.len() == 3).then_some(n)
    });
    let regions: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["region"].as_str())
        .collect();
    assert!(regions.contains(&"eu-west") && regions.contains(&"us-east"));

    // A key created through one node opens the stream on another.
    let (key_id, secret) = create_key(&us1, "cam");
    let mut publisher = publish(eu1.srt, &streamid("cam", &secret), &source);
    let held = wait_for("the placement of cam", Duration::from_secs(20), || {
        holder(&us1, "cam")
    });
    assert_eq!(held, eu1.id);

    let rt = runtime();
    rt.block_on(async {
        let viewer = HttpClient::new().with_header("x-client-location", VIEWER_IN_US);
        let tok = play_token("cam");
        let base = format!("http://{}/live/cam", edge.http);
        let mut first = None;
        for _ in 0..200 {
            let r = viewer.get(&format!("{base}/index.m3u8?token={tok}")).await;
            if r.status == 200 {
                first = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let first = first.expect("the stream never became playable through the edge");
        assert_eq!(served_by(&first).as_deref(), Some("origin-eu-1"));

        // While it plays, the registry shows the holder's load.
        let (followed, checked) = {
            let video = format!("{base}/video.m3u8?token={tok}");
            let follower = follow(&viewer, &video, Duration::from_secs(90));
            tokio::pin!(follower);
            let mut checked = false;
            loop {
                tokio::select! {
                    f = &mut follower => break (f, checked),
                    () = tokio::time::sleep(Duration::from_millis(700)), if !checked => {
                        let nodes = admin(&us1, &["nodes"]);
                        let eu = nodes.as_array().unwrap().iter()
                            .find(|n| n["id"] == "origin-eu-1").cloned();
                        if let Some(eu) = eu
                            && eu["load"]["streams"] == 1
                            && eu["load"]["viewers"].as_u64().unwrap_or(0) >= 1
                            && eu["load"]["egress_bps"].as_u64().unwrap_or(0) > 0
                        {
                            let others_idle = nodes.as_array().unwrap().iter()
                                .filter(|n| n["id"] != "origin-eu-1")
                                .all(|n| n["load"]["streams"] == 0);
                            assert!(others_idle, "{nodes:#}");
                            let streams = admin(&us1, &["streams"]);
                            assert!(streams[0]["bitrate_bps"].as_u64().unwrap_or(0) > 0, "{streams:#}");
                            checked = true;
                        }
                    }
                }
            }
        };
        assert!(checked, "the registry never showed origin-eu-1's load");
        assert!(
            followed.playlists.len() > 3,
            "the viewer followed a live playlist"
        );
        assert_eq!(
            frames_of(dir.path(), "region-b-viewer.mp4", &followed),
            published,
            "every frame reached the viewer in region B"
        );
    });
    // A play key restricts direct playback at the origin to its holders.
    let play = admin(
        &eu2,
        &["keys", "create", "--stream", "cam", "--scope", "play"],
    );
    let play_secret = play["secret"].as_str().expect("play secret").to_owned();
    rt.block_on(async {
        let direct = HttpClient::new();
        let video = format!("http://{}/live/cam/video.m3u8", eu1.http);
        // Within the origin's key-cache TTL (5 s) the new key applies.
        let start = Instant::now();
        loop {
            let r = direct.get(&video).await;
            if r.status == 401 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "a play key must restrict playback"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let r = direct.get(&format!("{video}?token={play_secret}")).await;
        assert_eq!(r.status, 200);
        let r = direct
            .get(&format!("{video}?token=wrong-secret-9999"))
            .await;
        assert_eq!(r.status, 403);
    });
    assert!(publisher.wait().expect("ffmpeg").success());

    // Revoked: the key no longer publishes, on any node.
    admin(&eu2, &["keys", "revoke", &key_id]);
    wait_for("cam to be released", Duration::from_secs(20), || {
        released(&us1, "cam").then_some(())
    });
    let forbidden = metric(&eu2, SRT_FORBIDDEN);
    let mut again = publish(eu2.srt, &streamid("cam", &secret), &source);
    let status = wait_for(
        "the refused publisher to exit",
        Duration::from_secs(20),
        || again.try_wait().expect("ffmpeg"),
    );
    assert!(!status.success(), "a revoked key published");
    wait_for("a refusal as forbidden", Duration::from_secs(20), || {
        (metric(&eu2, SRT_FORBIDDEN) > forbidden).then_some(())
    });
}

/// Kill the origin holding a stream: its heartbeat expires, the publisher
/// reconnects to another node and is placed there, the edge routes viewers
/// there, and a viewer that kept reloading plays on.
#[test]
fn node_loss_moves_the_stream_to_another_node() {
    let _serial = serial();
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 30);
    let redis = RedisServer::start();
    let url = redis.url();
    let mut eu1 = origin("origin-eu-1", "eu-west", "48.86,2.35", &url);
    let eu2 = origin("origin-eu-2", "eu-west", "48.86,2.35", &url);
    let us1 = origin("origin-us-1", "us-east", "38.90,-77.04", &url);
    let edge = edge(&url, &us1);
    let (_, secret) = create_key(&us1, "cam");
    let sid = streamid("cam", &secret);

    let mut first = publish(eu1.srt, &sid, &source);
    wait_for("cam on origin-eu-1", Duration::from_secs(20), || {
        (holder(&us1, "cam")? == "origin-eu-1").then_some(())
    });
    let rt = runtime();
    let viewer = HttpClient::new().with_header("x-client-location", VIEWER_IN_US);
    let tok = play_token("cam");
    let video = format!("http://{}/live/cam/video.m3u8?token={tok}", edge.http);
    rt.block_on(async {
        wait_for_edge(&viewer, &video, "origin-eu-1").await;
    });

    eu1.proc.kill();
    let killed = Instant::now();
    let _ = first.kill();
    let _ = first.wait();
    // The publisher reconnects to another node; until the dead node's
    // lease expires it is refused (the stream is still placed there) and
    // ffmpeg exits; then it is admitted and the placement moves.
    let (mut second, placed) = wait_for(
        "the publisher to be placed on origin-eu-2",
        Duration::from_secs(30),
        || {
            let mut p = publish(eu2.srt, &sid, &source);
            let admitted = wait_for(
                "the publisher to be admitted or refused",
                Duration::from_secs(20),
                || {
                    if holder(&us1, "cam").as_deref() == Some("origin-eu-2") {
                        return Some(true);
                    }
                    p.try_wait().expect("ffmpeg").map(|_| false)
                },
            );
            admitted.then(|| (p, Instant::now()))
        },
    );
    assert!(
        placed.duration_since(killed) >= HEARTBEAT_TTL / 2,
        "the dead node's lease must have expired first"
    );
    rt.block_on(async {
        // The edge follows the placement at its next registry refresh
        // (bounded by the wait, not timed: the machine may be slow).
        wait_for_edge(&viewer, &video, "origin-eu-2").await;
        // The player recovers: the new node's playlist advances through the
        // edge and its parts download.
        let r = viewer.get(&video).await;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        let part = text
            .lines()
            .rev()
            .find(|l| l.starts_with("#EXT-X-PART:"))
            .and_then(|l| l.split("URI=\"").nth(1))
            .and_then(|u| u.split('"').next())
            .expect("a part in the new node's playlist")
            .to_owned();
        let part_url = format!("http://{}/live/cam/{part}", edge.http);
        let r = viewer.get(&part_url).await;
        assert_eq!(
            r.status, 200,
            "a part of the new node plays through the edge"
        );
        assert!(!r.body.is_empty());
    });
    let _ = second.kill();
    let _ = second.wait();
    drop(eu2);
}

/// Poll the edge until `node` answers `url`.
async fn wait_for_edge(viewer: &HttpClient, url: &str, node: &str) {
    let start = Instant::now();
    loop {
        let r = viewer.get(url).await;
        if r.status == 200 && served_by(&r).as_deref() == Some(node) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the edge never served {url} from {node} (last: {} {:?})",
            r.status,
            served_by(&r)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kill redis-server during a live stream: it keeps playing, a new
/// unauthorized publish is refused with a clear reason, a known key still
/// publishes from the cached keys, nothing crashes; restart Redis: every
/// node re-registers and the placements come back without manual action.
#[test]
fn redis_loss_keeps_streams_flowing_and_state_converges() {
    let _serial = serial();
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 20);
    let published = count_frames(&source, "v");
    let short = source.clone();
    let mut redis = RedisServer::start();
    let url = redis.url();
    let mut eu1 = origin("origin-eu-1", "eu-west", "48.86,2.35", &url);
    let mut us1 = origin("origin-us-1", "us-east", "38.90,-77.04", &url);
    let (_, secret) = create_key(&us1, "cam");
    let (_, other) = create_key(&us1, "cam2");
    // us1 reads cam2's keys once (a refused publish caches them), as a
    // node that has seen a stream before would have.
    let mut probe = publish(us1.srt, &streamid("cam2", "wrong-secret-123"), &short);
    wait_for("the probe to be refused", Duration::from_secs(20), || {
        probe.try_wait().expect("ffmpeg")
    });

    let mut publisher = publish(eu1.srt, &streamid("cam", &secret), &source);
    wait_for("cam on origin-eu-1", Duration::from_secs(20), || {
        holder(&us1, "cam")
    });
    let rt = runtime();
    let direct = HttpClient::new();
    let video = format!("http://{}/live/cam/video.m3u8", eu1.http);
    let followed = rt.block_on(async {
        let follower = follow(&direct, &video, Duration::from_secs(90));
        tokio::pin!(follower);
        // Redis dies two seconds into the stream.
        tokio::select! {
            _ = &mut follower => panic!("the stream ended before Redis was killed"),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        redis.kill();
        follower.await
    });
    assert!(publisher.wait().expect("ffmpeg").success());
    assert_eq!(
        frames_of(dir.path(), "through-redis-loss.mp4", &followed),
        published,
        "every frame played while Redis was down"
    );
    // A new, unauthorized publish is refused with a clear reason: the
    // control plane is unavailable (not: the key is wrong).
    let unavailable = metric(&us1, SRT_UNAVAILABLE);
    let mut rogue = publish(us1.srt, &streamid("cam3", "no-such-secret-42"), &short);
    let status = wait_for(
        "the unauthorized publisher to exit",
        Duration::from_secs(20),
        || rogue.try_wait().expect("ffmpeg"),
    );
    assert!(!status.success());
    wait_for("a refusal as unavailable", Duration::from_secs(20), || {
        (metric(&us1, SRT_UNAVAILABLE) > unavailable).then_some(())
    });
    // A key this node has read before still publishes, within the grace.
    let mut cached = publish(us1.srt, &streamid("cam2", &other), &short);
    wait_for(
        "the cached-key publisher to be admitted",
        Duration::from_secs(20),
        || {
            assert!(
                cached.try_wait().expect("ffmpeg").is_none(),
                "a cached key must publish during the outage: {}",
                us1.proc.log()
            );
            (metric(&us1, PUBLISHERS) >= 1.0).then_some(())
        },
    );
    // A second publisher of the name on air is refused (2409) during the
    // outage too, and the one on air keeps publishing.
    let conflicts = metric(&us1, SRT_CONFLICT);
    let mut second = publish(us1.srt, &streamid("cam2", &other), &short);
    let status = wait_for(
        "the second publisher of cam2 to be refused",
        Duration::from_secs(20),
        || second.try_wait().expect("ffmpeg"),
    );
    assert!(
        !status.success(),
        "a second publisher never replaces the first"
    );
    assert!(metric(&us1, SRT_CONFLICT) > conflicts, "refused as 2409");
    assert!(
        cached.try_wait().expect("ffmpeg").is_none(),
        "the publisher on air was not replaced: {}",
        us1.proc.log()
    );
    assert!(eu1.proc.alive() && us1.proc.alive(), "nothing crashes");

    redis.restart();
    // Both nodes re-register, and the publisher admitted during the
    // outage gets its placement.
    wait_for("both nodes re-registered", Duration::from_secs(20), || {
        let n = try_admin(&eu1, &["nodes"])?;
        (n.as_array()?.len() == 2).then_some(())
    });
    wait_for(
        "cam2's placement after the outage",
        Duration::from_secs(20),
        || (holder(&eu1, "cam2")? == "origin-us-1").then_some(()),
    );
    let _ = cached.kill();
    let _ = cached.wait();
}

/// Two origins racing to own one stream: exactly one wins.
#[test]
fn two_origins_racing_for_one_stream_one_wins() {
    let _serial = serial();
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 8);
    let redis = RedisServer::start();
    let url = redis.url();
    let a = origin("origin-a", "eu-west", "48.86,2.35", &url);
    let b = origin("origin-b", "us-east", "38.90,-77.04", &url);
    let (_, secret) = create_key(&a, "race");
    let sid = streamid("race", &secret);
    for round in 0..3 {
        let mut pa = publish(a.srt, &sid, &source);
        let mut pb = publish(b.srt, &sid, &source);
        // The loser is refused at the handshake (2409) and exits; the
        // winner publishes to the end.
        let (ra, rb) = (pa.wait().expect("ffmpeg"), pb.wait().expect("ffmpeg"));
        assert!(
            ra.success() != rb.success(),
            "round {round}: exactly one publisher wins ({ra:?}, {rb:?})\n{}\n{}",
            a.proc.log(),
            b.proc.log()
        );
        wait_for("the stream to be released", Duration::from_secs(20), || {
            released(&a, "race").then_some(())
        });
    }
    let conflicts = metric(&a, SRT_CONFLICT) + metric(&b, SRT_CONFLICT);
    assert!(conflicts >= 3.0, "a refusal per round: {conflicts}");
}

/// A node started while Redis is down serves, refuses publishers it cannot
/// authorize, and once Redis is up registers and writes its configured
/// stream keys, which then open the stream.
#[test]
fn node_started_before_redis_converges_when_it_comes_up() {
    let _serial = serial();
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 6);
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.stop();
    let key = "configured-key-0123456789";
    let o = origin_with(
        "origin-early",
        "eu-west",
        "48.86,2.35",
        &url,
        &["--stream-key", &format!("cam={key}")],
    );
    let mut early = publish(o.srt, &streamid("cam", key), &source);
    let status = wait_for(
        "the publisher to be refused",
        Duration::from_secs(20),
        || early.try_wait().expect("ffmpeg"),
    );
    assert!(!status.success(), "nothing can be authorized without Redis");
    redis.restart();
    wait_for("the node to register", Duration::from_secs(20), || {
        let n = try_admin(&o, &["nodes"])?;
        (n.as_array()?.len() == 1).then_some(())
    });
    let keys = wait_for(
        "the configured key in Redis",
        Duration::from_secs(20),
        || {
            let k = try_admin(&o, &["keys", "list"])?;
            (k.as_array()?.len() == 1).then_some(k)
        },
    );
    assert_eq!(keys[0]["stream"], "cam");
    let mut publisher = publish(o.srt, &streamid("cam", key), &source);
    wait_for("cam to be placed", Duration::from_secs(20), || {
        holder(&o, "cam")
    });
    assert!(publisher.wait().expect("ffmpeg").success());
}

/// The configuration file owns its stream keys: a key replaced in the
/// configuration opens the stream at the next start and the old one is
/// refused (2403); a key removed from it is revoked; a key made through the
/// admin API is left alone.
#[test]
fn configured_stream_keys_follow_the_configuration_across_restarts() {
    let _serial = serial();
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 4);
    let redis = RedisServer::start();
    let url = redis.url();
    let old = "configured-key-old-0123456789";
    let new = "configured-key-new-0123456789";
    let mut first = origin_with(
        "origin-keys-1",
        "eu-west",
        "48.86,2.35",
        &url,
        &[
            "--stream-key",
            &format!("cam={old}"),
            "--stream-key",
            &format!("gone={old}"),
        ],
    );
    let (admin_key, _) = create_key(&first, "other");
    let ids = |node: &Origin| -> Option<Vec<String>> {
        let keys = try_admin(node, &["keys", "list"])?;
        let mut ids: Vec<String> = keys
            .as_array()?
            .iter()
            .filter_map(|k| k["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        Some(ids)
    };
    assert_eq!(
        ids(&first).expect("keys"),
        [
            "config-cam-0".to_owned(),
            "config-gone-1".into(),
            admin_key.clone()
        ]
    );
    first.proc.kill();

    let second = origin_with(
        "origin-keys-2",
        "eu-west",
        "48.86,2.35",
        &url,
        &["--stream-key", &format!("cam={new}")],
    );
    assert_eq!(
        ids(&second).expect("keys"),
        ["config-cam-0".to_owned(), admin_key],
        "the removed key is revoked, the admin API's key is kept"
    );
    let forbidden = metric(&second, SRT_FORBIDDEN);
    let mut stale = publish(second.srt, &streamid("cam", old), &source);
    let status = wait_for("the old key to be refused", Duration::from_secs(20), || {
        stale.try_wait().expect("ffmpeg")
    });
    assert!(!status.success(), "the replaced key opens nothing");
    assert!(
        metric(&second, SRT_FORBIDDEN) > forbidden,
        "refused as 2403"
    );
    let mut publisher = publish(second.srt, &streamid("cam", new), &source);
    wait_for("cam to be placed", Duration::from_secs(20), || {
        holder(&second, "cam")
    });
    assert!(publisher.wait().expect("ffmpeg").success());
}
