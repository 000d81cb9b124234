//! The command-line contract: `livestack origin` binds what it is told,
//! prints where it listens, warns when publishing is open, takes a TOML
//! config that flags override, and refuses a bad config with a clear error;
//! `livestack edge` needs `--origin` or `--redis`, and with `--redis` alone
//! the registry names the origins.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn livestack(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_livestack"));
    c.args(args).env("LIVESTACK_LOG", "info");
    c
}

/// Starts the binary and reads stdout until `HTTP listening on ...`;
/// returns stdout so far and stderr of the first half second.
fn start(args: &[&str]) -> (Running, String, String) {
    let mut child = livestack(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn livestack");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let running = Running(child);
    let err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let err = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut e = err.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
    }
    let mut out = String::new();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("HTTP listening on") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let err = err.lock().unwrap().clone();
    (running, out, err)
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn origin_listens_where_told_and_warns_when_open() {
    let (_p, out, err) = start(&["origin", "--srt", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    assert!(out.contains("SRT listening on 127.0.0.1:"), "{out}");
    let http = out
        .lines()
        .find_map(|l| l.strip_prefix("HTTP listening on http://"))
        .expect("http address printed");
    assert!(err.contains("no stream keys configured"), "{err}");
    assert!(http_get(http, "/healthz").contains("200 OK"));
    let metrics = http_get(http, "/metrics");
    assert!(metrics.contains("livestack_origin_publishers"), "{metrics}");
    assert!(http_get(http, "/live/nothing/index.m3u8").contains("404"));
}

#[test]
fn config_file_then_flags_override() {
    let dir = std::env::temp_dir().join(format!("livestack-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("origin.toml");
    std::fs::write(
        &file,
        "srt = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:1\"\n[hls]\npart_target = \"250ms\"\n[[auth.keys]]\nstream = \"*\"\nkey = \"a-long-secret\"\n",
    )
    .unwrap();
    // The flag overrides the file's (unusable) HTTP port.
    let (_p, out, err) = start(&[
        "origin",
        "--config",
        file.to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
    ]);
    assert!(out.contains("HTTP listening on http://127.0.0.1:"), "{out}");
    assert!(!out.contains("127.0.0.1:1\n"), "{out}");
    assert!(
        !err.contains("no stream keys configured"),
        "keys came from the file: {err}"
    );
}

#[test]
fn bad_config_is_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("livestack-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[hls]\npart_target = \"5ms\"\n").unwrap();
    let out = livestack(&["origin", "--config", file.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("part_target"), "{err}");

    std::fs::write(&file, "srtt = \"1.2.3.4:5\"\n").unwrap();
    let out = livestack(&["origin", "--config", file.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn demo_prints_the_urls_to_open() {
    let (_p, out, _) = start(&[
        "demo",
        "--srt",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--webtransport",
        "127.0.0.1:0",
        "--webrtc",
        "127.0.0.1:0",
    ]);
    let http = out
        .lines()
        .find_map(|l| l.strip_prefix("HTTP listening on http://"))
        .expect("http address printed")
        .to_owned();
    // (The player URLs, MoQ's included, are printed after the listeners;
    // this test reads stdout up to the HTTP line.) Every listener on a free
    // port: the defaults may be taken on a shared machine.
    // The multivariant playlist of the built-in stream becomes available.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http_get(&http, "/live/demo/index.m3u8");
        if r.contains("200 OK") {
            assert!(r.contains("#EXT-X-STREAM-INF"), "{r}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "demo stream never became available: {r}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// HS256 key of the edge tests (`kid:ALG:base64url(32 bytes)`).
const EDGE_KEYS: &str = "k1:HS256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

#[test]
fn edge_without_origin_or_redis_is_refused() {
    let out = livestack(&["edge", "--http", "127.0.0.1:0", "--token-keys", EDGE_KEYS])
        .env_remove("LIVESTACK_ORIGIN")
        .env_remove("LIVESTACK_REDIS")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--origin") && err.contains("--redis"), "{err}");
}

/// `--redis` without `--origin`: the edge starts, and while the registry
/// lists no node (here Redis is not even reachable) a stream request is
/// answered 503 with Retry-After and a reason, not proxied anywhere.
#[test]
fn edge_with_redis_alone_starts_and_answers_503_until_a_node_registers() {
    // Nothing listens on port 1: the control plane is unreachable, so the
    // registry snapshot stays empty.
    let (_p, out, err) = start(&[
        "edge",
        "--http",
        "127.0.0.1:0",
        "--redis",
        "redis://127.0.0.1:1",
        "--token-keys",
        EDGE_KEYS,
    ]);
    let http = out
        .lines()
        .find_map(|l| l.strip_prefix("HTTP listening on http://"))
        .unwrap_or_else(|| panic!("http address printed: {out} {err}"))
        .to_owned();
    let token = livestack(&[
        "token",
        "mint",
        "--stream",
        "cam1",
        "--token-keys",
        EDGE_KEYS,
    ])
    .output()
    .expect("mint");
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).expect("token is text");
    let r = http_get(
        &http,
        &format!("/live/cam1/index.m3u8?token={}", token.trim()),
    );
    // The head is what precedes the blank line (all of `r` if it has none).
    let head = r
        .split_once("\r\n\r\n")
        .map_or(r.as_str(), |(head, _)| head)
        .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{r}");
    assert!(head.contains("\r\nretry-after: "), "{r}");
    assert!(
        head.contains("x-livestack-reason: no origin node is registered"),
        "{r}"
    );
    // The player page has nowhere to come from either.
    assert!(http_get(&http, "/").starts_with("HTTP/1.1 503"));
    assert!(http_get(&http, "/healthz").contains("200 OK"));
}
