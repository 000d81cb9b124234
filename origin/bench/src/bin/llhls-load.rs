//! # llhls-load: LL-HLS clients one origin core sustains
//!
//! **What it measures.** How many concurrent blocking-reload LL-HLS clients,
//! each fetching every part of a 1.8 Mbit/s stream, one origin core serves
//! with every part delivered within 50 ms of its availability. **Goal:
//! ≥ 2,000 clients at p99 ≤ 50 ms.**
//!
//! **How.**
//! - Source: 20 s of `testsrc2` 1280x720 30 fps H.264 at 1700 kbit/s
//!   (`-b:v 1700k -maxrate 1700k -bufsize 1700k`, 2 s GOP) + AAC 96 kbit/s,
//!   encoded once (cached), published in a loop with
//!   `ffmpeg -stream_loop -1 -re -i FILE -c copy -f mpegts srt://…`.
//! - The release origin runs as its own process pinned to core 0:
//!   `taskset -c 0 livestack --threads 1 origin … --part-target 200ms`.
//!   ffmpeg is pinned to core 1, which it shares with this generator (it
//!   uses a few percent of it).
//! - This generator is one tokio `current_thread` runtime (run it pinned to
//!   core 1, see below). Each client is its own HTTP/1.1 keep-alive
//!   connection ([`livestack_bench::http1`]) looping like hls.js on the
//!   *video rendition only* (no audio playlist or parts): a blocking
//!   `video.m3u8?_HLS_msn=M&_HLS_part=P` for the part after the newest one it
//!   has, then a GET of each new part. With `--playlists-only` clients skip
//!   the part GETs (to tell playlist cost from part cost).
//! - A part's **availability** is the earliest moment any client (all
//!   blocked on it at once) received a playlist listing it: the first
//!   response the origin got out after the part appeared. A client's
//!   **delivery delay** for the part is when it had the part's last byte
//!   (with `--playlists-only`, the playlist's) minus that availability; it
//!   includes the origin serving every other blocked client first, which is
//!   the point.
//! - The sweep runs each client count in turn against the same origin:
//!   clients start staggered over `--ramp-secs`, then `--warmup-secs`, then
//!   parts that become available during the next `--measure-secs` are
//!   measured; then all clients disconnect. Per step: p50/p99/max delay,
//!   requests/s and egress Mbit/s (bytes the generator received), errors
//!   (non-200, I/O errors, requests over 10 s) and parts a client never got,
//!   and the CPU of the origin and of the generator (from `/proc`). A
//!   generator near 100 % of its core measures itself, not the origin: the
//!   report flags it. The sweep stops after a step whose p99 exceeds 1 s.
//!
//! **Run** (needs the release origin binary; file descriptors: one per
//! client in each process, the limit is checked):
//!
//! ```sh
//! cargo build --release -p livestack -p livestack-bench
//! ulimit -n 20000
//! taskset -c 1 target/release/llhls-load --clients 250,500,1000,2000,3000
//! taskset -c 1 target/release/llhls-load --clients 1000,2000 --playlists-only
//! # on a machine shared with other work (as root): origin, ffmpeg and
//! # generator at nice -10
//! taskset -c 1 target/release/llhls-load --nice -10
//! ```

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use clap::Parser;
use livestack_bench::{
    command_line,
    http1::{self, Conn},
    media::{self, EncodeSpec},
    process::{CpuMeter, OriginProcess, OriginSpec, publish, renice_self},
    stats::{Summary, show},
};
use serde_json::json;

/// LL-HLS load generator.
#[derive(Debug, Parser)]
struct Args {
    /// Client counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000,3000")]
    clients: Vec<usize>,
    /// Seconds over which a step's clients start (evenly staggered).
    #[arg(long, default_value_t = 5)]
    ramp_secs: u64,
    /// Seconds after the ramp before measuring.
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Seconds of parts measured per step.
    #[arg(long, default_value_t = 20)]
    measure_secs: u64,
    /// Core the origin is pinned to.
    #[arg(long, default_value_t = 0)]
    origin_cpu: usize,
    /// Core ffmpeg is pinned to (the generator's).
    #[arg(long, default_value_t = 1)]
    publisher_cpu: usize,
    /// Only blocking playlist requests, no part GETs.
    #[arg(long)]
    playlists_only: bool,
    /// Niceness for the measured processes (e.g. -10, needs root): keeps
    /// other work on a shared machine from delaying them.
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
}

/// Goal: every part within this many ms of availability (p99).
const GOAL_P99_MS: f64 = 50.0;
/// Goal: this many clients.
const GOAL_CLIENTS: usize = 2000;
/// A request taking longer than this counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type PartKey = (u64, u32);

/// What one client saw.
#[derive(Debug, Default)]
struct ClientLog {
    /// When a playlist newly listing a part arrived.
    listed: Vec<(PartKey, Instant)>,
    /// When the part itself (or, playlists only, its playlist) arrived.
    delivered: Vec<(PartKey, Instant)>,
    /// Requests completed within the measurement window.
    requests: u64,
    /// Bytes received (heads and bodies) within the window.
    wire_bytes: u64,
    errors: u64,
    timeouts: u64,
}

impl ClientLog {
    fn count(&mut self, at: Instant, window: (Instant, Instant), wire_len: usize) {
        if at >= window.0 && at < window.1 {
            self.requests += 1;
            self.wire_bytes += wire_len as u64;
        }
    }
}

/// `(msn, index)` of a `…part{M}.{I}.m4s` URI.
fn part_key(uri: &str) -> Option<PartKey> {
    let name = uri.rsplit('/').next()?;
    let s = name.strip_prefix("part")?.strip_suffix(".m4s")?;
    let (m, i) = s.split_once('.')?;
    Some((m.parse().ok()?, i.parse().ok()?))
}

/// The `EXT-X-PART`s of a playlist newer than `have`, as (key, URI), in
/// order. Scans from the end (playlists list about 60 parts; a client wants
/// the last one or two) and only allocates for those.
fn new_parts(body: &[u8], have: Option<PartKey>) -> Vec<(PartKey, String)> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for line in text.rsplit('\n') {
        let Some(attrs) = line.strip_prefix("#EXT-X-PART:") else {
            continue;
        };
        let Some(uri) = attrs
            .split("URI=\"")
            .nth(1)
            .and_then(|u| u.split('"').next())
        else {
            continue;
        };
        let Some(key) = part_key(uri) else { continue };
        if have.is_some_and(|h| key <= h) {
            break;
        }
        out.push((key, uri.to_owned()));
        if have.is_none() {
            break; // only the newest: where a new client starts
        }
    }
    out.reverse();
    out
}

/// One client until `stop`. Reconnects at the live edge after an error.
/// Requests and bytes are counted when they complete within `window`.
async fn client(
    addr: SocketAddr,
    playlists_only: bool,
    window: (Instant, Instant),
    stop: Instant,
) -> ClientLog {
    let mut log = ClientLog::default();
    let playlist = "/live/bench/video.m3u8";
    let dir = "/live/bench/";
    'connection: while Instant::now() < stop {
        let Ok(Ok(mut conn)) = tokio::time::timeout(REQUEST_TIMEOUT, Conn::connect(addr)).await
        else {
            log.errors += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut fetched: Option<PartKey> = None;
        while Instant::now() < stop {
            let path = match fetched {
                Some((m, p)) => format!("{playlist}?_HLS_msn={m}&_HLS_part={}", p + 1),
                None => playlist.to_owned(),
            };
            let r = match tokio::time::timeout(REQUEST_TIMEOUT, conn.get(&path, true)).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => {
                    log.errors += 1;
                    continue 'connection;
                }
                Err(_) => {
                    log.timeouts += 1;
                    continue 'connection;
                }
            };
            let at = Instant::now();
            log.count(at, window, r.wire_len);
            if r.status != 200 {
                log.errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue 'connection;
            }
            let parts = new_parts(conn.body(), fetched);
            let Some(&(last, _)) = parts.last() else {
                continue;
            };
            if fetched.is_none() {
                fetched = Some(last); // start at the live edge
                continue;
            }
            for (key, uri) in parts {
                log.listed.push((key, at));
                if playlists_only {
                    log.delivered.push((key, at));
                } else {
                    match tokio::time::timeout(
                        REQUEST_TIMEOUT,
                        conn.get(&format!("{dir}{uri}"), false),
                    )
                    .await
                    {
                        Ok(Ok(r)) if r.status == 200 => {
                            let at = Instant::now();
                            log.delivered.push((key, at));
                            log.count(at, window, r.wire_len);
                        }
                        Ok(Ok(_)) => log.errors += 1,
                        Ok(Err(_)) => {
                            log.errors += 1;
                            continue 'connection;
                        }
                        Err(_) => {
                            log.timeouts += 1;
                            continue 'connection;
                        }
                    }
                }
            }
            fetched = Some(last);
        }
    }
    log
}

/// Figures of one sweep step.
#[derive(Debug)]
struct Step {
    clients: usize,
    delay: Option<Summary>,
    parts: usize,
    missing: u64,
    req_per_s: f64,
    egress_mbps: f64,
    errors: u64,
    timeouts: u64,
    origin_cpu: f64,
    generator_cpu: f64,
}

async fn step(args: &Args, origin: &OriginProcess, n: usize) -> Result<Step> {
    let ramp = Duration::from_secs(args.ramp_secs);
    let t0 = Instant::now();
    let from = t0 + ramp + Duration::from_secs(args.warmup_secs);
    let until = from + Duration::from_secs(args.measure_secs);
    // Clients keep going a little after the window, for its last parts.
    let stop = until + Duration::from_secs(1);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let at = t0 + ramp.mul_f64(i as f64 / n as f64);
        let addr = origin.http;
        let po = args.playlists_only;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            client(addr, po, (from, until), stop).await
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let origin_pid = origin.child.pid().to_string();
    let mut origin_cpu = CpuMeter::start(&origin_pid)?;
    let mut gen_cpu = CpuMeter::start("self")?;
    tokio::time::sleep_until(until.into()).await;
    let (ocpu, gcpu) = (origin_cpu.lap()?, gen_cpu.lap()?);
    let mut logs = Vec::with_capacity(n);
    for t in tasks {
        logs.push(t.await?);
    }

    // Availability: the earliest listing of each part across all clients.
    let mut avail: HashMap<PartKey, Instant> = HashMap::new();
    for log in &logs {
        for &(k, at) in &log.listed {
            avail
                .entry(k)
                .and_modify(|a| *a = (*a).min(at))
                .or_insert(at);
        }
    }
    let in_window: HashMap<PartKey, Instant> = avail
        .into_iter()
        .filter(|(_, a)| *a >= from && *a < until)
        .collect();
    let mut delays = Vec::new();
    let mut missing = 0u64;
    for log in &logs {
        let mut got = 0u64;
        for (k, at) in &log.delivered {
            if let Some(a) = in_window.get(k) {
                delays.push(at.saturating_duration_since(*a).as_secs_f64() * 1e3);
                got += 1;
            }
        }
        missing += (in_window.len() as u64).saturating_sub(got);
    }
    let secs = (until - from).as_secs_f64();
    let requests: u64 = logs.iter().map(|l| l.requests).sum();
    let bytes: u64 = logs.iter().map(|l| l.wire_bytes).sum();
    Ok(Step {
        clients: n,
        delay: Summary::of(&delays),
        parts: in_window.len(),
        missing,
        req_per_s: requests as f64 / secs,
        egress_mbps: bytes as f64 * 8.0 / secs / 1e6,
        errors: logs.iter().map(|l| l.errors).sum(),
        timeouts: logs.iter().map(|l| l.timeouts).sum(),
        origin_cpu: ocpu,
        generator_cpu: gcpu,
    })
}

/// The soft limit on open files, from `/proc/self/limits`.
fn nofile_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.nice {
        renice_self(n)?;
    }
    let max_clients = args.clients.iter().copied().max().unwrap_or(0);
    if let Some(limit) = nofile_limit()
        && limit < max_clients as u64 + 64
    {
        bail!(
            "open-file limit {limit} is too low for {max_clients} clients: run `ulimit -n 20000` first"
        );
    }
    let spec = EncodeSpec {
        width: 1280,
        height: 720,
        fps: 30,
        seconds: 20,
        video_kbps: 1700,
        audio_kbps: 96,
        gop_secs: 2,
    };
    let path = media::encoded(&spec)?;
    let bps = media::bitrate(&path)?;
    let origin = OriginProcess::start(&OriginSpec {
        threads: Some(1),
        cpu: Some(args.origin_cpu),
        part_target: Duration::from_millis(200),
        nice: args.nice,
    })
    .await?;
    let _ffmpeg = publish(
        origin.srt,
        "bench",
        &path,
        true,
        Some(args.publisher_cpu),
        args.nice,
    )?;
    println!(
        "llhls-load: blocking-reload clients one origin core sustains, every part within {GOAL_P99_MS} ms of availability (goal >= {GOAL_CLIENTS} clients)"
    );
    println!("command: {}", command_line());
    println!("origin: {}", origin.child.command());
    println!(
        "source: {} ({:.2} Mbit/s incl. TS overhead; clients follow the video rendition only), ffmpeg -stream_loop -1 -re on cpu {}",
        path.display(),
        bps as f64 / 1e6,
        args.publisher_cpu
    );
    println!(
        "generator: current_thread runtime on cpus {}; nice {:?}; mode: {}",
        allowed_cpus(),
        args.nice,
        if args.playlists_only {
            "playlists only"
        } else {
            "playlist + part"
        }
    );
    // Wait for the first complete segment.
    http1::wait_for_200(
        origin.http,
        "/live/bench/video.m3u8",
        "the stream",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || Ok(()),
    )
    .await?;

    let mut steps = Vec::new();
    for &n in &args.clients {
        let s = step(&args, &origin, n).await?;
        println!(
            "clients={:5} delay ms {} | parts={} missing={} req/s={:.0} egress={:.1} Mbit/s errors={} timeouts={} origin_cpu={:.0}% generator_cpu={:.0}%{}",
            s.clients,
            show(s.delay.as_ref()),
            s.parts,
            s.missing,
            s.req_per_s,
            s.egress_mbps,
            s.errors,
            s.timeouts,
            s.origin_cpu,
            s.generator_cpu,
            if s.generator_cpu > 90.0 {
                " (generator saturated: delays include the generator's own queueing)"
            } else {
                ""
            }
        );
        let worst = s.delay.map_or(f64::INFINITY, |d| d.p99);
        steps.push(s);
        if worst > 1000.0 {
            println!("p99 above 1 s: sweep stopped");
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let best = steps
        .iter()
        .filter(|s| s.delay.is_some_and(|d| d.p99 <= GOAL_P99_MS) && s.timeouts == 0)
        .map(|s| s.clients)
        .max();
    match best {
        Some(b) => println!(
            "largest client count with p99 <= {GOAL_P99_MS} ms: {b} (goal {GOAL_CLIENTS}: {}, {:.2}x of goal)",
            if b >= GOAL_CLIENTS { "MET" } else { "NOT MET" },
            b as f64 / GOAL_CLIENTS as f64
        ),
        None => println!("no step met p99 <= {GOAL_P99_MS} ms (goal {GOAL_CLIENTS}: NOT MET)"),
    }
    let json_steps: Vec<_> = steps
        .iter()
        .map(|s| {
            json!({
                "clients": s.clients,
                "delay_ms": Summary::json(s.delay.as_ref()),
                "parts": s.parts,
                "missing": s.missing,
                "req_per_s": s.req_per_s,
                "egress_mbps": s.egress_mbps,
                "errors": s.errors,
                "timeouts": s.timeouts,
                "origin_cpu_pct": s.origin_cpu,
                "generator_cpu_pct": s.generator_cpu,
            })
        })
        .collect();
    println!(
        "{}",
        json!({
            "bench": "llhls-load",
            "command": command_line(),
            "playlists_only": args.playlists_only,
            "nice": args.nice,
            "source_bps": bps,
            "steps": json_steps,
            "largest_clients_p99_within_goal": best,
            "goal_clients": GOAL_CLIENTS,
            "goal_p99_ms": GOAL_P99_MS,
            "met": best.is_some_and(|b| b >= GOAL_CLIENTS),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_playlist() {
        let pl = b"#EXTM3U\n#EXT-X-PART:DURATION=0.20000,URI=\"video/part7.3.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/part7.4.m4s\"\n";
        let pl = [
            &pl[..],
            &b"#EXT-X-PART:DURATION=0.2,URI=\"video/part8.0.m4s\"\n"[..],
        ]
        .concat();
        let p = |m, i| ((m, i), format!("video/part{m}.{i}.m4s"));
        assert_eq!(new_parts(&pl, None), vec![p(8, 0)]);
        assert_eq!(new_parts(&pl, Some((7, 2))), vec![p(7, 3), p(8, 0)]);
        assert_eq!(new_parts(&pl, Some((8, 0))), vec![]);
    }
}
