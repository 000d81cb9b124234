//! # edge-rps: edge requests per second per core, cached token-rewritten playlist
//!
//! **What it measures.** How many viewer requests per second one edge core
//! answers for a cached LL-HLS media playlist that it token-checks and
//! rewrites for each viewer: `GET /live/bench/index.m3u8?token=CAT`. **Goal:
//! ≥ 10,000 requests/s per core** (`wasmtime serve`'s hello world does
//! about 2,700 per core).
//!
//! **How.**
//! - Upstream: a static origin in this process serving the
//!   `livestack-manifest` bench playlist (10 segments, 30 parts, preload
//!   hint, rendition reports; `edge-modules/manifest/tests/data/bench-media.m3u8`)
//!   with `Cache-Control: max-age=1`, as the origin sends a live playlist:
//!   the edge cache refetches it about once a second and serves every
//!   other request from memory.
//! - The edge: this binary re-executed as a child (`--serve-edge`), pinned
//!   with `taskset -c EDGE_CPU` (default 0), one tokio `current_thread`
//!   runtime plus wasmtime's epoch thread, the embedded components and the
//!   default limits (`livestack_edge_server::Edge`, HS256 keys
//!   [`BENCH_KEYS`]): bounded instance reuse, or a fresh instance per
//!   component call with `--max-instance-reuse 1`. For every request the
//!   edge verifies the viewer's CTA-5007 CAT through the tokens component,
//!   looks the playlist up in its cache and rewrites it through the
//!   manifest component so that every URI carries the token; after the runs
//!   the edge's own `/metrics` (component calls, 200 responses) are
//!   reported to show it.
//! - The generator: this process, one tokio `current_thread` runtime (run
//!   it pinned to the other core, see below), `--connections` HTTP/1.1
//!   keep-alive connections ([`livestack_bench_support::http1`]), each a viewer with
//!   its own token (`MintRequest::for_stream("bench", Play, now, 3600)`),
//!   each issuing one request at a time for `--secs` after `--warmup-secs`.
//! - Checks: every response must be 200 (anything else, an I/O error or a
//!   request over 5 s counts as an error); every `--check-every`-th response
//!   of each connection (and its first) is parsed and every URI in it (URI
//!   lines and `URI="…"` attributes) must carry `token=<its own token>`, and
//!   as many URIs as the origin's playlist has.
//! - Figures per run: requests/s, latency p50/p99/max (request written →
//!   response read, µs, as the generator sees it), errors, CPU of the edge
//!   process and of the generator (from `/proc`), and requests/s per edge
//!   core (requests/s ÷ edge CPU share: equal to requests/s when the edge
//!   core is saturated). `--runs` runs (default 3); the summary gives their
//!   medians. A generator near 100 % of its core measures itself, not the
//!   edge: the report flags it.
//!
//! **Run:**
//!
//! ```sh
//! cargo build --release -p livestack-edge-bench --bin edge-rps
//! taskset -c 1 target/release/edge-rps
//! # on a machine shared with other work (as root): edge and generator at nice -10
//! taskset -c 1 target/release/edge-rps --nice -10
//! # a fresh instance per component call (what operator modules get)
//! taskset -c 1 target/release/edge-rps --nice -10 --max-instance-reuse 1
//! ```

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use livestack_bench_support::{
    command_line,
    http1::{self, Conn},
    process::{CpuMeter, Guarded, free_tcp_addr, on_path, renice_self},
    stats::{Summary, median, show},
};
use livestack_edge_server::{Edge, EdgeConfig};
use serde_json::json;
use tokio::net::TcpListener;

/// The upstream's media playlist: 10 segments, 30 parts.
const PLAYLIST: &str = include_str!("../../../manifest/tests/data/bench-media.m3u8");
/// Where the viewers ask for it.
const PLAYLIST_PATH: &str = "/live/bench/index.m3u8";
/// Stream name the viewers' tokens are scoped to.
const STREAM: &str = "bench";
/// The edge's token keys (`livestack-tokens` key configuration: one HS256
/// key); the generator mints the viewers' tokens with them.
const BENCH_KEYS: &str = "k1:HS256:ZWRnZS10ZXN0LWtleS0wMTIzNDU2Nzg5MDEyMzQ1Njc4OTAx";
/// Goal: requests per second per edge core.
const GOAL_RPS: f64 = 10_000.0;
/// A request taking longer than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Edge requests/s per core for a cached, token-rewritten media playlist.
#[derive(Debug, Parser)]
struct Args {
    /// Concurrent keep-alive connections (viewers, one token each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Seconds of load before each run's measurement.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Runs; the summary gives their medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Core the edge process is pinned to.
    #[arg(long, default_value_t = 0)]
    edge_cpu: usize,
    /// Check every URI of every N-th response of a connection (and of its
    /// first) for the viewer's token.
    #[arg(long, default_value_t = 100)]
    check_every: u64,
    /// Niceness for the edge and the generator (e.g. -10, needs root):
    /// keeps other work on a shared machine from delaying them.
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
    /// The edge's `ComponentLimits::max_instance_reuse` (default: the
    /// library default, bounded reuse of the embedded components; 1: a
    /// fresh instance per component call).
    #[arg(long)]
    max_instance_reuse: Option<u32>,
    /// Internal: run as the edge process, listening here.
    #[arg(long, hide = true)]
    serve_edge: Option<SocketAddr>,
    /// Internal: the upstream of `--serve-edge`.
    #[arg(long, hide = true)]
    upstream: Option<SocketAddr>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(nice) = args.nice
        && args.serve_edge.is_none()
    {
        renice_self(nice)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match (args.serve_edge, args.upstream) {
        (Some(listen), Some(upstream)) => {
            rt.block_on(serve_edge(listen, upstream, args.max_instance_reuse))
        }
        (None, None) => rt.block_on(bench(&args)),
        _ => bail!("--serve-edge and --upstream go together"),
    }
}

/// The edge process: the edge on `listen` in front of `upstream`, until
/// killed.
async fn serve_edge(listen: SocketAddr, upstream: SocketAddr, reuse: Option<u32>) -> Result<()> {
    let mut config = EdgeConfig::new(listen, format!("http://{upstream}").parse()?, BENCH_KEYS);
    if let Some(reuse) = reuse {
        config.limits.max_instance_reuse = reuse;
    }
    let edge = Edge::start(config).await.context("starting the edge")?;
    edge.run().await;
    Ok(())
}

/// Serves [`PLAYLIST`] at [`PLAYLIST_PATH`] (404 elsewhere) with
/// `max-age=1`; counts requests.
async fn upstream(listener: TcpListener, requests: Arc<AtomicU64>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                requests.fetch_add(1, Ordering::Relaxed);
                let mut r = Response::new(Full::new(Bytes::from_static(PLAYLIST.as_bytes())));
                if req.uri().path() == PLAYLIST_PATH {
                    let h = r.headers_mut();
                    h.insert(
                        header::CONTENT_TYPE,
                        "application/vnd.apple.mpegurl".parse().expect("valid"),
                    );
                    h.insert(header::CACHE_CONTROL, "max-age=1".parse().expect("valid"));
                } else {
                    *r.body_mut() = Full::new(Bytes::new());
                    *r.status_mut() = StatusCode::NOT_FOUND;
                }
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// The URIs of a playlist: URI lines and `URI="…"` attribute values.
fn uris(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("URI=\"") {
            rest = &rest[i + 5..];
            let Some(end) = rest.find('"') else { break };
            out.push(&rest[..end]);
            rest = &rest[end + 1..];
        }
    }
    out
}

/// Checks that `body` lists `expected` URIs and each carries
/// `token=<token>` as a query parameter.
fn check_tokenized(body: &[u8], token: &str, expected: usize) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let list = uris(text);
    if list.len() != expected {
        return Err(format!("{} URIs, expected {expected}", list.len()));
    }
    let param = format!("token={token}");
    for uri in list {
        let Some((_, query)) = uri.split_once('?') else {
            return Err(format!("URI without a query: {uri}"));
        };
        if !query.split('&').any(|p| p == param) {
            return Err(format!("URI without the viewer's token: {uri}"));
        }
    }
    Ok(())
}

/// A CAT for `stream` from [`BENCH_KEYS`], valid for an hour; `id`
/// makes each viewer's token distinct.
fn mint(id: usize) -> Result<String> {
    let keys: livestack_tokens::KeySet = BENCH_KEYS.parse()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let req = livestack_tokens::MintRequest::for_stream(
        STREAM,
        livestack_tokens::Access::Play,
        now,
        3600,
        format!("edge-rps-{id}").into_bytes(),
    )?;
    Ok(livestack_tokens::mint_cat(&req, &keys)?)
}

/// What one connection saw in the measurement window.
#[derive(Debug, Default)]
struct ConnLog {
    /// Latency of each request completed in the window, µs.
    latencies_us: Vec<f64>,
    errors: u64,
    /// Responses whose URIs were checked, and the first failure.
    checked: u64,
    bad: Option<String>,
}

/// One viewer: requests the playlist back to back until `stop`, counting
/// those completed within `window`. Reconnects after an error.
async fn viewer(
    edge: SocketAddr,
    token: String,
    expected_uris: usize,
    check_every: u64,
    window: (Instant, Instant),
    stop: Instant,
) -> ConnLog {
    let mut log = ConnLog::default();
    let path = format!("{PLAYLIST_PATH}?token={token}");
    let mut n = 0u64;
    'connection: while Instant::now() < stop {
        let Ok(Ok(mut conn)) = tokio::time::timeout(REQUEST_TIMEOUT, Conn::connect(edge)).await
        else {
            log.errors += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        while Instant::now() < stop {
            let start = Instant::now();
            let result = tokio::time::timeout(REQUEST_TIMEOUT, conn.get(&path, true)).await;
            let end = Instant::now();
            let counted = start >= window.0 && end < window.1;
            let r = match result {
                Ok(Ok(r)) => r,
                _ => {
                    if counted {
                        log.errors += 1;
                    }
                    continue 'connection;
                }
            };
            if r.status != 200 {
                if counted {
                    log.errors += 1;
                }
                continue;
            }
            if n.is_multiple_of(check_every.max(1)) {
                log.checked += 1;
                if let Err(e) = check_tokenized(conn.body(), &token, expected_uris)
                    && log.bad.is_none()
                {
                    log.bad = Some(e);
                }
            }
            n += 1;
            if counted {
                log.latencies_us.push((end - start).as_secs_f64() * 1e6);
            }
        }
    }
    log
}

/// Figures of one run.
#[derive(Debug)]
struct Run {
    rps: f64,
    latency_us: Option<Summary>,
    errors: u64,
    checked: u64,
    bad: Option<String>,
    edge_cpu: f64,
    generator_cpu: f64,
}

impl Run {
    /// Requests per second per edge core: requests/s over the share of a
    /// core the edge used.
    fn rps_per_core(&self) -> f64 {
        if self.edge_cpu > 0.0 {
            self.rps / (self.edge_cpu / 100.0).min(1.0)
        } else {
            f64::NAN
        }
    }
}

async fn run(args: &Args, edge: SocketAddr, edge_pid: &str, tokens: &[String]) -> Result<Run> {
    let expected = uris(PLAYLIST).len();
    let t0 = Instant::now();
    let from = t0 + Duration::from_secs(args.warmup_secs);
    let until = from + Duration::from_secs(args.secs);
    let mut tasks = Vec::with_capacity(tokens.len());
    for token in tokens {
        tasks.push(tokio::spawn(viewer(
            edge,
            token.clone(),
            expected,
            args.check_every,
            (from, until),
            until,
        )));
    }
    tokio::time::sleep_until(from.into()).await;
    let mut edge_cpu = CpuMeter::start(edge_pid)?;
    let mut gen_cpu = CpuMeter::start("self")?;
    tokio::time::sleep_until(until.into()).await;
    let (ecpu, gcpu) = (edge_cpu.lap()?, gen_cpu.lap()?);
    let mut logs = Vec::with_capacity(tasks.len());
    for t in tasks {
        logs.push(t.await?);
    }
    let latencies: Vec<f64> = logs
        .iter()
        .flat_map(|l| l.latencies_us.iter().copied())
        .collect();
    Ok(Run {
        rps: latencies.len() as f64 / (until - from).as_secs_f64(),
        latency_us: Summary::of(&latencies),
        errors: logs.iter().map(|l| l.errors).sum(),
        checked: logs.iter().map(|l| l.checked).sum(),
        bad: logs.iter().find_map(|l| l.bad.clone()),
        edge_cpu: ecpu,
        generator_cpu: gcpu,
    })
}

async fn bench(args: &Args) -> Result<()> {
    if !on_path("taskset") {
        bail!("`taskset` (util-linux) is needed to pin the edge to a core");
    }
    let requests = Arc::new(AtomicU64::new(0));
    let origin = TcpListener::bind("127.0.0.1:0").await?;
    let origin_addr = origin.local_addr()?;
    tokio::spawn(upstream(origin, Arc::clone(&requests)));

    let edge_addr = free_tcp_addr()?;
    let exe = std::env::current_exe()?;
    // The child inherits this process's niceness (`--nice`, already set).
    let mut prefix = Vec::new();
    prefix.extend([
        "taskset".to_owned(),
        "-c".to_owned(),
        args.edge_cpu.to_string(),
    ]);
    if std::env::var_os("LIVESTACK_LOG").is_none() {
        prefix.splice(0..0, ["env".to_owned(), "LIVESTACK_LOG=warn".to_owned()]);
    }
    let mut child_args = vec![
        "--serve-edge".to_owned(),
        edge_addr.to_string(),
        "--upstream".to_owned(),
        origin_addr.to_string(),
    ];
    if let Some(reuse) = args.max_instance_reuse {
        child_args.extend(["--max-instance-reuse".to_owned(), reuse.to_string()]);
    }
    let mut edge = Guarded::spawn(&prefix, &exe.to_string_lossy(), &child_args)?;
    http1::wait_for_200(
        edge_addr,
        "/healthz",
        "the edge's /healthz",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || edge.check_running(),
    )
    .await?;
    let edge_pid = edge.pid().to_string();

    let tokens = (0..args.connections)
        .map(mint)
        .collect::<Result<Vec<_>>>()
        .context("minting viewer tokens")?;
    // Warm the cache and check every viewer once before measuring.
    let expected = uris(PLAYLIST).len();
    for token in &tokens {
        let mut c = Conn::connect(edge_addr).await?;
        let r = c
            .get(&format!("{PLAYLIST_PATH}?token={token}"), true)
            .await?;
        if r.status != 200 {
            bail!("warm-up request answered {}", r.status);
        }
        check_tokenized(c.body(), token, expected)
            .map_err(|e| anyhow::anyhow!("warm-up response: {e}"))?;
    }
    // And a request without a token is refused.
    let mut c = Conn::connect(edge_addr).await?;
    let r = c.get(PLAYLIST_PATH, false).await?;
    if r.status != 401 {
        bail!("a request without a token answered {}, not 401", r.status);
    }

    println!(
        "edge-rps: requests/s one edge core answers for a cached, token-rewritten LL-HLS media playlist (goal >= {GOAL_RPS:.0}/s per core)"
    );
    println!("command: {}", command_line());
    println!("edge: {} (pid {edge_pid})", edge.command());
    println!(
        "upstream: static playlist, {} bytes, {} URIs, Cache-Control max-age=1; generator: current_thread runtime on cpus {}, {} keep-alive connections (one token each), nice {:?}",
        PLAYLIST.len(),
        expected,
        allowed_cpus(),
        args.connections,
        args.nice
    );

    let mut runs = Vec::new();
    for i in 0..args.runs {
        let before = requests.load(Ordering::Relaxed);
        let r = run(args, edge_addr, &edge_pid, &tokens).await?;
        let upstream_requests = requests.load(Ordering::Relaxed) - before;
        edge.check_running()?;
        println!(
            "run {}: {:.0} req/s | latency µs {} | errors={} checked={} bad={} | edge_cpu={:.0}% generator_cpu={:.0}% | req/s per edge core={:.0} | upstream requests={}{}",
            i + 1,
            r.rps,
            show(r.latency_us.as_ref()),
            r.errors,
            r.checked,
            r.bad.as_deref().unwrap_or("none"),
            r.edge_cpu,
            r.generator_cpu,
            r.rps_per_core(),
            upstream_requests,
            if r.generator_cpu > 90.0 {
                " (generator saturated: it may be measuring itself)"
            } else {
                ""
            }
        );
        runs.push(r);
    }
    // The edge's own count: every answered request went through both
    // components.
    let mut c = Conn::connect(edge_addr).await?;
    c.get("/metrics", true).await?;
    let metrics = String::from_utf8_lossy(c.body()).into_owned();
    let calls = |component: &str| {
        metric(
            &metrics,
            &format!(
                "livestack_edge_component_calls_total{{component=\"{component}\",outcome=\"ok\"}}"
            ),
        )
    };
    let (verify_calls, rewrite_calls) = (calls("tokens"), calls("manifest"));
    let served = metric(
        &metrics,
        "livestack_edge_http_responses_total{status=\"200\"}",
    );
    println!(
        "edge /metrics: {served:.0} responses 200, {verify_calls:.0} tokens component calls, {rewrite_calls:.0} manifest component calls"
    );
    let med = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let rps = med(|r| r.rps);
    let per_core = med(Run::rps_per_core);
    let p50 = med(|r| r.latency_us.map_or(f64::NAN, |s| s.p50));
    let p99 = med(|r| r.latency_us.map_or(f64::NAN, |s| s.p99));
    let errors: u64 = runs.iter().map(|r| r.errors).sum();
    let bad = runs.iter().find_map(|r| r.bad.clone());
    let met = per_core >= GOAL_RPS && errors == 0 && bad.is_none();
    println!(
        "median of {} runs: {rps:.0} req/s, {per_core:.0} req/s per edge core, latency p50 {p50:.0} µs p99 {p99:.0} µs, errors {errors}, token check {} (goal {GOAL_RPS:.0}/s per core: {}, {:.2}x of goal)",
        runs.len(),
        bad.as_deref()
            .unwrap_or("every checked URI carried the token"),
        if met { "MET" } else { "NOT MET" },
        per_core / GOAL_RPS
    );
    let json_runs: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({
                "req_per_s": r.rps,
                "req_per_s_per_edge_core": r.rps_per_core(),
                "latency_us": Summary::json(r.latency_us.as_ref()),
                "errors": r.errors,
                "checked": r.checked,
                "bad": r.bad,
                "edge_cpu_pct": r.edge_cpu,
                "generator_cpu_pct": r.generator_cpu,
            })
        })
        .collect();
    println!(
        "{}",
        json!({
            "bench": "edge-rps",
            "command": command_line(),
            "connections": args.connections,
            "nice": args.nice,
            "runs": json_runs,
            "median_req_per_s": rps,
            "median_req_per_s_per_edge_core": per_core,
            "median_latency_p50_us": p50,
            "median_latency_p99_us": p99,
            "errors": errors,
            "max_instance_reuse": args.max_instance_reuse,
            "edge_responses_200": served,
            "edge_tokens_calls": verify_calls,
            "edge_manifest_calls": rewrite_calls,
            "goal_req_per_s_per_core": GOAL_RPS,
            "met": met,
        })
    );
    Ok(())
}

/// The sum of the samples of the metric `name` (name and labels exactly as
/// exposed) in an OpenMetrics text exposition.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.trim().parse::<f64>().ok())
        .sum()
}

/// This process's allowed CPUs, from `/proc/self/status`.
fn allowed_cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_uri_and_checks_the_token() {
        let pl = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?token=t\"\n#EXTINF:4,\nseg1.mp4?a=1&token=t\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p.mp4?token=t\"\n";
        assert_eq!(
            uris(pl),
            vec!["init.mp4?token=t", "seg1.mp4?a=1&token=t", "p.mp4?token=t"]
        );
        assert_eq!(check_tokenized(pl.as_bytes(), "t", 3), Ok(()));
        assert!(check_tokenized(pl.as_bytes(), "u", 3).is_err());
        assert!(check_tokenized(pl.as_bytes(), "t", 4).is_err());
        assert!(uris(PLAYLIST).len() > 40);
    }
}
