//! The edge gateway component runs unchanged on two independent standard
//! WASI 0.2 HTTP hosts: `jco serve` (the Bytecode Alliance's JavaScript
//! component runtime, Node.js) and `wasmtime serve` 48.0.8 (the reference
//! runtime's CLI). Each serves `livestack_gateway_component.wasm` in front
//! of an in-process origin playing the demo stream, and
//!
//! - a playlist request without a token is refused with 401;
//! - with a CTA-5007 CAT minted by `livestack-tokens` for `demo`, the
//!   multivariant and media playlists come back 200, every URI in them
//!   carrying `token=`;
//! - a part fetched through the gateway with that token is byte-identical
//!   to the origin's;
//! - the CAT percent-encoded byte by byte is the same token;
//! - a token for another stream is refused with 403, a tampered one with
//!   401, the native edge's statuses and reasons;
//! - WHEP set-up (`POST /whep/demo`) answers 307 to the node of the
//!   registry view with a session token the node can verify;
//! - 200 playlist requests in a row are all answered 200 (under `wasmtime
//!   serve`, about one in fifty used to fail 502: wstd wrote the empty
//!   upstream request body after the host had closed it; see `live.rs`).
//!
//! The component is built here (`cargo build --release --target
//! wasm32-wasip2 -p livestack-gateway-component` in the components
//! workspace, into `target/wasm-components`, shared with the edge host's
//! build script; a no-op when fresh). `tests/jco/serve.mjs` runs
//! `jco serve <wasm> --host 127.0.0.1 --port <free port>` and stops it when
//! the test lets go. jco gets the component's configuration through the
//! process environment, which its WASI shim hands to the component as
//! `wasi:cli/environment` when `--sandbox` is not given. `wasmtime serve -S
//! cli=y --env NAME ...` passes the named variables of its own environment
//! (so no secret is on its command line).
//!
//! Needs `node` and `npm ci` in `tests/jco`, and `wasmtime` 48.0.8 on the
//! `PATH` (the README test command installs both); a missing one fails the
//! test with a message saying so.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use livestack_test_harness::{
    hls::{HttpClient, MediaPlaylist},
    require, start_origin,
};
use livestack_tokens::{
    Access, Alg, KeySet, MintRequest, VerifyOptions, mint_cat, mint_jwt, verify,
};

/// The edge credential of the test's closed origin.
const ORIGIN_CREDENTIAL: &str = "gateway-edge-credential-0123456789abcdef";
/// The HS256 key the gateway verifies with (and mints session tokens with):
/// `t1`, 32 bytes `0123456789abcdef0123456789abcdef`, base64url.
const KEYS: &str = "t1:HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
/// How long a host may take to transpile or compile the component and
/// listen.
const HOST_START_TIMEOUT: Duration = Duration::from_secs(90);
/// The `wasmtime` CLI version the test runs (and the README installs).
const WASMTIME_VERSION: &str = "48.0.8";
/// Playlist requests in a row that must all be answered 200.
const REPEATED_REQUESTS: usize = 200;
/// How long the demo source may take to list its first parts.
const LIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Backstop for one HTTP request (a blocking playlist reload at the origin
/// answers within a few seconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The reason header every refusal carries.
const REASON: &str = "x-livestack-reason";

/// The standard hosts the gateway is tested on.
#[derive(Debug, Clone, Copy)]
enum HostKind {
    /// `jco serve` (Node.js).
    Jco,
    /// `wasmtime serve`.
    WasmtimeServe,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_component_serves_tokenized_llhls_on_jco() {
    serves_tokenized_llhls(HostKind::Jco).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_component_serves_tokenized_llhls_on_wasmtime_serve() {
    serves_tokenized_llhls(HostKind::WasmtimeServe).await;
}

async fn serves_tokenized_llhls(kind: HostKind) {
    let wasm = tokio::task::spawn_blocking(build_gateway)
        .await
        .expect("build task");

    // A closed origin: the gateway presents the edge credential.
    let mut origin = start_origin(|c| {
        c.access.closed = true;
        c.access.edge_credential = Some(ORIGIN_CREDENTIAL.into());
    })
    .await;
    origin.spawn(livestack_origin::demo::run(
        origin.streams.clone(),
        "demo".into(),
    ));
    let origin_base = format!("http://{}", origin.http_addr);
    let nodes = format!(
        r#"{{"nodes":[{{"id":"o1","region":"local","baseUrl":"{origin_base}"}}],"placements":{{"demo":"o1"}}}}"#
    );
    let host = tokio::task::block_in_place(|| {
        ServingHost::start(
            kind,
            &wasm,
            &[
                ("LIVESTACK_ORIGIN", origin_base.as_str()),
                ("LIVESTACK_ORIGIN_CREDENTIAL", ORIGIN_CREDENTIAL),
                ("LIVESTACK_TOKEN_KEYS", KEYS),
                ("LIVESTACK_NODES", nodes.as_str()),
            ],
        )
    });
    let gw = format!("http://{}", host.addr);
    let client = HttpClient::new();
    // What the test reads from the origin itself, as an edge would.
    let at_origin = client.with_header(livestack_tokens::EDGE_CREDENTIAL_HEADER, ORIGIN_CREDENTIAL);

    // The stream is live at the origin (parts listed) before the checks.
    let started = Instant::now();
    let origin_playlist = loop {
        let r = fetch(&at_origin, &format!("{origin_base}/live/demo/video.m3u8")).await;
        if r.status == 200 {
            let text = String::from_utf8(r.body.to_vec()).expect("utf-8 playlist");
            let p = MediaPlaylist::parse(&text);
            if p.segments.iter().any(|s| !s.parts.is_empty()) {
                break p;
            }
        }
        assert!(
            started.elapsed() < LIVE_TIMEOUT,
            "the demo stream did not go live at the origin"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(origin_playlist);
    let r = fetch(&client, &format!("{origin_base}/live/demo/video.m3u8")).await;
    assert_eq!(r.status, 401, "the origin is closed to all but its edges");

    let now = unix_now();
    let keys = KeySet::parse(KEYS).expect("test keys");
    let cat = mint_cat(
        &MintRequest::for_stream("demo", Access::Play, now, 600, *b"jco-e2e-1")
            .expect("mint request"),
        &keys,
    )
    .expect("mint CAT");

    // 1. No token → 401 with a Bearer challenge.
    let r = fetch(&client, &format!("{gw}/live/demo/index.m3u8")).await;
    assert_eq!(r.status, 401, "no token: {}", text(&r.body));
    assert_eq!(header(&r.headers, REASON), "missing-token");
    assert!(
        header(&r.headers, "www-authenticate").starts_with("Bearer"),
        "challenge: {:?}",
        r.headers
    );

    // 2. Multivariant and media playlists with the CAT → 200, and every URI
    //    carries the token.
    let r = fetch(&client, &format!("{gw}/live/demo/index.m3u8?token={cat}")).await;
    assert_eq!(r.status, 200, "index with CAT: {}", text(&r.body));
    assert!(
        header(&r.headers, "content-type").contains("mpegurl"),
        "content-type: {:?}",
        r.headers
    );
    let index = text(&r.body);
    let index_uris = uris(&index);
    assert!(!index_uris.is_empty(), "no URIs in index:\n{index}");
    for uri in &index_uris {
        assert!(
            uri.contains(&format!("token={cat}")),
            "URI without the token: {uri}\n{index}"
        );
    }

    let r = fetch(&client, &format!("{gw}/live/demo/video.m3u8?token={cat}")).await;
    assert_eq!(r.status, 200, "media playlist with CAT: {}", text(&r.body));
    let media = text(&r.body);
    let playlist = MediaPlaylist::parse(&media);
    assert!(
        !playlist.uris.is_empty(),
        "no URIs in media playlist:\n{media}"
    );
    for uri in uris(&media) {
        assert!(
            uri.contains(&format!("token={cat}")),
            "URI without the token: {uri}\n{media}"
        );
    }

    // 3. A listed part through the gateway equals the origin's bytes.
    let part = playlist
        .segments
        .iter()
        .flat_map(|s| s.parts.iter())
        .next_back()
        .expect("a listed part")
        .uri
        .clone();
    let through = fetch(&client, &format!("{gw}/live/demo/{part}")).await;
    assert_eq!(through.status, 200, "part through the gateway: {part}");
    let bare = part.split('?').next().expect("part path");
    let direct = fetch(&at_origin, &format!("{origin_base}/live/demo/{bare}")).await;
    assert_eq!(direct.status, 200, "part from the origin: {bare}");
    assert!(!direct.body.is_empty(), "empty part {bare}");
    assert_eq!(
        through.body, direct.body,
        "part {bare}: gateway bytes differ from the origin's"
    );

    // 4. A token for another stream, and a tampered one, are refused.
    let other = mint_cat(
        &MintRequest::for_stream("other", Access::Play, now, 600, *b"jco-e2e-2")
            .expect("mint request"),
        &keys,
    )
    .expect("mint CAT");
    let r = fetch(&client, &format!("{gw}/live/demo/video.m3u8?token={other}")).await;
    // The native edge's answer too (tests/edge_token_playback.rs): one
    // status table, `livestack_tokens::TokenError::status`.
    assert_eq!(r.status, 403, "token for another stream: {}", text(&r.body));
    assert_eq!(header(&r.headers, REASON), "wrong-resource");
    assert!(
        header(&r.headers, "www-authenticate").contains("error=\"insufficient_scope\""),
        "challenge: {:?}",
        r.headers
    );
    let mut tampered = cat.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let r = fetch(
        &client,
        &format!("{gw}/live/demo/video.m3u8?token={tampered}"),
    )
    .await;
    assert_eq!(r.status, 401, "tampered token: {}", text(&r.body));
    assert_eq!(header(&r.headers, REASON), "bad-signature");

    // 4b. The CAT with every byte percent-encoded is the same token, as on
    //     the native edge; the playlist carries it in its canonical form.
    let encoded: String = cat.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = fetch(
        &client,
        &format!("{gw}/live/demo/index.m3u8?token={encoded}"),
    )
    .await;
    assert_eq!(r.status, 200, "percent-encoded CAT: {}", text(&r.body));
    for uri in uris(&text(&r.body)) {
        assert!(
            uri.contains(&format!("token={cat}")),
            "URI without the canonical token: {uri}"
        );
    }

    // 5. WHEP set-up: 307 to the node holding the stream, with a session
    //    token scoped to `demo`, play, audience `o1`.
    let mut viewer = MintRequest::for_stream("demo", Access::Play, now, 600, *b"jco-e2e-3")
        .expect("mint request")
        .without_cat_claims();
    viewer.alg = Some(Alg::Hs256);
    let viewer = mint_jwt(&viewer, &keys).expect("mint JWT");
    let (status, headers) = post_sdp(&format!("{gw}/whep/demo"), &viewer).await;
    assert_eq!(status, 307, "WHEP set-up: {headers:?}");
    let location = header(&headers, "location");
    let prefix = format!("{origin_base}/whep/demo?token=");
    assert!(location.starts_with(&prefix), "Location: {location}");
    let session = &location[prefix.len()..];
    let mut opts = VerifyOptions::new(unix_now());
    opts.audience = Some("o1".into());
    opts.stream = Some("demo".into());
    opts.access = Some(Access::Play);
    verify(session, &keys, &opts).expect("the session token verifies for o1, demo, play");

    // 6. Many requests in a row: every one is answered, none 502.
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..REPEATED_REQUESTS {
        let r = fetch(&client, &format!("{gw}/live/demo/video.m3u8?token={cat}")).await;
        *statuses.entry(r.status).or_insert(0usize) += 1;
    }
    assert_eq!(
        statuses,
        [(200, REPEATED_REQUESTS)].into(),
        "{kind:?}: statuses of {REPEATED_REQUESTS} playlist requests"
    );

    tokio::task::block_in_place(|| drop(host));
}

/// GETs `url`, failing the test (instead of hanging) after
/// [`REQUEST_TIMEOUT`].
async fn fetch(client: &HttpClient, url: &str) -> livestack_test_harness::hls::Fetched {
    tokio::time::timeout(REQUEST_TIMEOUT, client.get(url))
        .await
        .unwrap_or_else(|_| panic!("GET {url} got no answer within {REQUEST_TIMEOUT:?}"))
}

/// Builds the gateway component and returns its path.
fn build_gateway() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    // `<target>/tmp` → `<target>/wasm-components`, the edge host's guest
    // target directory.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("wasm-components");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("edge-modules/components/Cargo.toml"))
        .args(["-p", "livestack-gateway-component"])
        .env("CARGO_TARGET_DIR", &target);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo for the gateway component");
    assert!(
        status.success(),
        "building the gateway component failed ({status}): {cmd:?}"
    );
    let wasm = target.join("wasm32-wasip2/release/livestack_gateway_component.wasm");
    assert!(wasm.is_file(), "{} was not produced", wasm.display());
    wasm
}

/// A running standard host serving the gateway: `jco serve` (through
/// `tests/jco/serve.mjs`, which stops jco and the server process it spawns
/// when its standard input closes, so nothing outlives the test even if
/// the test process is killed) or `wasmtime serve` (one process, killed on
/// drop).
struct ServingHost {
    kind: HostKind,
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ServingHost {
    fn start(kind: HostKind, wasm: &Path, env: &[(&str, &str)]) -> ServingHost {
        let addr = free_addr();
        let mut cmd = match kind {
            HostKind::Jco => jco_command(wasm, addr),
            HostKind::WasmtimeServe => wasmtime_command(wasm, addr, env),
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {kind:?} ({cmd:?}): {e}"));
        let stdin = child.stdin.take();
        let mut host = ServingHost {
            kind,
            child,
            stdin,
            addr,
        };
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Some(status) = host.child.try_wait().expect("wait for the host") {
                panic!("{kind:?} exited with {status} before listening");
            }
            assert!(
                started.elapsed() < HOST_START_TIMEOUT,
                "{kind:?} did not listen on {addr} within {HOST_START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        host
    }
}

/// `node serve.mjs <wasm> <host> <port>` in `tests/jco`.
fn jco_command(wasm: &Path, addr: SocketAddr) -> Command {
    require("node");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("jco");
    assert!(
        dir.join("node_modules/@bytecodealliance/jco/package.json")
            .is_file(),
        "{} has no node_modules/@bytecodealliance/jco: run the README test command (npm ci in tests/jco)",
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(dir)
        .arg("serve.mjs")
        .arg(wasm)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string());
    cmd
}

/// `wasmtime serve -S cli=y --env NAME... --addr ADDR <wasm>`: the
/// variables are named, their values come from the process environment.
fn wasmtime_command(wasm: &Path, addr: SocketAddr, env: &[(&str, &str)]) -> Command {
    require("wasmtime");
    let version = Command::new("wasmtime")
        .arg("--version")
        .output()
        .expect("wasmtime --version");
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.split_whitespace().nth(1) == Some(WASMTIME_VERSION),
        "the test runs wasmtime {WASMTIME_VERSION}, the PATH has {version:?}: run the README test command"
    );
    let mut cmd = Command::new("wasmtime");
    cmd.args(["serve", "-S", "cli=y"]);
    for (name, _) in env {
        cmd.args(["--env", name]);
    }
    cmd.arg("--addr").arg(addr.to_string()).arg(wasm);
    cmd
}

impl Drop for ServingHost {
    fn drop(&mut self) {
        // EOF on serve.mjs's stdin: it kills jco's process group and exits.
        drop(self.stdin.take());
        if let HostKind::WasmtimeServe = self.kind {
            let _ = self.child.kill();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
}

/// POSTs a dummy SDP offer with a bearer token; returns status and headers
/// (redirects are not followed).
async fn post_sdp(url: &str, token: &str) -> (u16, http::HeaderMap) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::post(url)
        .header("content-type", "application/sdp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from_static(
            b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        )))
        .expect("request");
    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .unwrap_or_else(|_| panic!("POST {url} got no answer within {REQUEST_TIMEOUT:?}"))
        .expect("POST");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let _ = response.into_body().collect().await;
    (status, headers)
}

/// Every URI of a playlist: plain URI lines and `URI="..."` attributes.
fn uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line.to_owned());
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("URI=\"") {
            let value = &rest[at + 5..];
            let end = value.find('"').expect("closing quote");
            out.push(value[..end].to_owned());
            rest = &value[end..];
        }
    }
    out
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        // Test helper: a missing header reads as empty, which the assertions catch.
        .unwrap_or_default()
}

fn text(body: &Bytes) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
