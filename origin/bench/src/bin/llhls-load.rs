//! # llhls-load: LL-HLS clients one origin core sustains
//!
//! **What it measures.** How many concurrent blocking-reload LL-HLS clients,
//! each fetching every part of a 1.8 Mbit/s stream, one origin core serves
//! with every part delivered within 50 ms of its availability, and what the
//! origin's core spends per delivered Gbit/s compared with nginx serving the
//! same bytes as static files. **Goals: ≥ 2,000 clients at p99 ≤ 50 ms;
//! origin CPU per delivered Gbit/s ≤ 1.5× nginx's.**
//!
//! **How.**
//! - Source: 20 s of `testsrc2` 1280x720 30 fps H.264 at 1700 kbit/s
//!   (`-b:v 1700k -maxrate 1700k -bufsize 1700k`, 2 s GOP) + AAC 96 kbit/s,
//!   encoded once (cached), published in a loop with
//!   `ffmpeg -stream_loop -1 -re -i FILE -c copy -f mpegts srt://…`.
//! - The release origin runs as its own process pinned to the server core:
//!   `taskset -c 0 livestack --threads 1 origin … --part-target 200ms`.
//!   ffmpeg is pinned to core 1, which it shares with this generator (it
//!   uses a few percent of it).
//! - This generator is one tokio `current_thread` runtime (run it pinned to
//!   core 1, see below). Each client is its own HTTP/1.1 keep-alive
//!   connection ([`livestack_bench::http1`]) following the *video rendition
//!   only* ([`livestack_bench::llhls`]): against the origin, a blocking
//!   `video.m3u8?_HLS_msn=M&_HLS_part=P` for the part after the newest it
//!   has, then a GET of each new part. With `--playlists-only` clients skip
//!   the part GETs (to tell playlist cost from part cost). A client
//!   allocates nothing per request and discards part bodies in the kernel
//!   (`MSG_TRUNC`), counting their bytes.
//! - **nginx calibration** (`--server nginx` or `both`): the generator first
//!   captures `--capture-parts` parts from the origin with one blocking
//!   client: every playlist answer (the exact bytes a blocking client gets
//!   for that part) and every part, with the time each playlist arrived.
//!   Then the origin and ffmpeg stop, and Debian's nginx (one process,
//!   `master_process off`, `sendfile`, no access log; see
//!   [`livestack_bench::nginx`]) serves those files pinned to the same core.
//!   nginx cannot hold a playlist request until a part exists, so the
//!   clients **emulate the blocking reload**: the captured schedule repeats,
//!   and at each captured availability time every client requests that
//!   moment's playlist and then its part(s). All clients wake together, so
//!   nginx faces the same burst (N × (playlist + part)) a blocking origin
//!   releases when a part appears. One difference is left: the origin has
//!   the N requests queued before the part exists, nginx reads them in the
//!   burst (which costs nginx a little more, so the ratio favours nginx
//!   slightly less than it would).
//! - A part's **availability** is the earliest moment any client received a
//!   playlist listing it. A client's **delivery delay** for the part is when
//!   it had the part's last byte (with `--playlists-only`, the playlist's)
//!   minus that availability; it includes the server serving every other
//!   client first, which is the point.
//! - The sweep runs each client count in turn (`--runs` times) against the
//!   same server: clients start staggered over `--ramp-secs`, then
//!   `--warmup-secs`, then parts that become available during the next
//!   `--measure-secs` are measured; then all clients disconnect. Per step:
//!   p50/p99/max delay, requests/s, delivered Mbit/s (bytes the generator
//!   received), errors (non-200, I/O errors, requests over 10 s) and parts a
//!   client never got, and **CPU**: the server's (`/proc/PID/stat`) and this
//!   generator's (`/proc/self/stat`), each as % of one core and as
//!   **CPU-seconds per delivered Gbit** (= cores per Gbit/s). A step where
//!   the generator used more than 80 % of its core is flagged
//!   `GENERATOR-BOUND`: its delays are the generator's, and it does not
//!   count for the client-count figure. The sweep stops after a step whose
//!   p99 exceeds 1 s.
//! - The last lines are one-line summaries (medians over runs, then over
//!   client counts) per server and, with `both`, the origin/nginx ratio of
//!   CPU per delivered Gbit/s; then one JSON line with every figure.
//!
//! **Run** (needs the release origin binary; file descriptors: one per
//! client in each process, the limit is checked; nginx: `apt-get install -y
//! nginx`):
//!
//! ```sh
//! cargo build --release -p livestack -p livestack-bench
//! ulimit -n 20000
//! taskset -c 1 target/release/llhls-load --clients 250,500,1000,2000,3000
//! taskset -c 1 target/release/llhls-load --clients 1000,2000 --playlists-only
//! taskset -c 1 target/release/llhls-load --server both --clients 500,1000,2000 --runs 3
//! # on a machine shared with other work (as root): server, ffmpeg and
//! # generator at nice -10
//! taskset -c 1 target/release/llhls-load --nice -10
//! ```

use std::{
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use livestack_bench::{
    command_line, http1,
    llhls::{self, ClientLog, Schedule, Traffic, Window},
    media::{self, EncodeSpec},
    nginx::Nginx,
    process::{CpuMeter, OriginProcess, OriginSpec, publish, renice_self},
    stats::{Summary, median, show},
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Which server(s) the sweep runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerChoice {
    /// The origin, blocking playlist reload.
    Origin,
    /// nginx serving a capture of the origin's playlists and parts.
    Nginx,
    /// The origin, then nginx, and their ratio.
    Both,
}

/// LL-HLS load generator.
#[derive(Debug, Parser)]
struct Args {
    /// Client counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000,3000")]
    clients: Vec<usize>,
    /// Repetitions of each client count (the summaries take medians).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Server(s) to load.
    #[arg(long, value_enum, default_value_t = ServerChoice::Origin)]
    server: ServerChoice,
    /// Parts captured from the origin for nginx (5 per second).
    #[arg(long, default_value_t = 100)]
    capture_parts: usize,
    /// Seconds over which a step's clients start (evenly staggered).
    #[arg(long, default_value_t = 5)]
    ramp_secs: u64,
    /// Seconds after the ramp before measuring.
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Seconds of parts measured per step.
    #[arg(long, default_value_t = 20)]
    measure_secs: u64,
    /// Core the server (origin or nginx) is pinned to.
    #[arg(long, default_value_t = 0)]
    origin_cpu: usize,
    /// Core ffmpeg is pinned to (the generator's).
    #[arg(long, default_value_t = 1)]
    publisher_cpu: usize,
    /// Only playlist requests, no part GETs.
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
/// Aim: origin CPU per delivered Gbit/s at most this many times nginx's.
const GOAL_RATIO: f64 = 1.5;
/// Above this share of its core, the generator measures itself.
const GENERATOR_BOUND_PCT: f64 = 80.0;
/// The stream's name.
const STREAM: &str = "bench";

/// Figures of one sweep step.
#[derive(Debug, Clone, Copy)]
struct Step {
    clients: usize,
    run: usize,
    traffic: Traffic,
    secs: f64,
    server_cpu: f64,
    generator_cpu: f64,
}

impl Step {
    fn gbit(&self) -> f64 {
        self.traffic.bytes as f64 * 8.0 / 1e9
    }
    /// CPU-seconds per delivered Gbit of a process that used `pct` % of a
    /// core over the step.
    fn per_gbit(&self, pct: f64) -> f64 {
        pct / 100.0 * self.secs / self.gbit()
    }
    fn server_per_gbit(&self) -> f64 {
        self.per_gbit(self.server_cpu)
    }
    fn generator_per_gbit(&self) -> f64 {
        self.per_gbit(self.generator_cpu)
    }
    fn generator_bound(&self) -> bool {
        self.generator_cpu > GENERATOR_BOUND_PCT
    }
    fn p99(&self) -> f64 {
        self.traffic.delay.map_or(f64::INFINITY, |d| d.p99)
    }

    fn line(&self, server: &str) -> String {
        let t = &self.traffic;
        format!(
            "server={server} clients={:5} run={} delay ms {} | parts={} missing={} req/s={:.0} delivered={:.1} Mbit/s errors={} timeouts={} server_cpu={:.1}% ({:.3} cpu-s/Gbit) generator_cpu={:.1}% ({:.3} cpu-s/Gbit){}",
            self.clients,
            self.run,
            show(t.delay.as_ref()),
            t.parts,
            t.missing,
            t.requests as f64 / self.secs,
            self.gbit() * 1e3 / self.secs,
            t.errors,
            t.timeouts,
            self.server_cpu,
            self.server_per_gbit(),
            self.generator_cpu,
            self.generator_per_gbit(),
            if self.generator_bound() {
                " GENERATOR-BOUND (generator above 80 % of its core: these delays are the generator's)"
            } else {
                ""
            }
        )
    }

    fn json(&self) -> Value {
        let t = &self.traffic;
        json!({
            "clients": self.clients,
            "run": self.run,
            "delay_ms": Summary::json(t.delay.as_ref()),
            "parts": t.parts,
            "delivered": t.delivered,
            "missing": t.missing,
            "req_per_s": t.requests as f64 / self.secs,
            "delivered_mbps": self.gbit() * 1e3 / self.secs,
            "errors": t.errors,
            "timeouts": t.timeouts,
            "server_cpu_pct": self.server_cpu,
            "server_cpu_s_per_gbit": self.server_per_gbit(),
            "generator_cpu_pct": self.generator_cpu,
            "generator_cpu_s_per_gbit": self.generator_per_gbit(),
            "generator_bound": self.generator_bound(),
        })
    }
}

/// Runs `n` clients made by `spawn` (given each client's start time and the
/// window) and measures the server process `server_pid` and this one.
async fn step(
    args: &Args,
    server_pid: u32,
    n: usize,
    run: usize,
    spawn: &dyn Fn(Instant, Window) -> JoinHandle<ClientLog>,
) -> Result<Step> {
    let ramp = Duration::from_secs(args.ramp_secs);
    let t0 = Instant::now();
    let from = t0 + ramp + Duration::from_secs(args.warmup_secs);
    let until = from + Duration::from_secs(args.measure_secs);
    // Clients keep going a little after the window, for its last parts.
    let window = Window {
        from,
        until,
        stop: until + Duration::from_secs(1),
    };
    let tasks: Vec<_> = (0..n)
        .map(|i| spawn(t0 + ramp.mul_f64(i as f64 / n as f64), window))
        .collect();
    tokio::time::sleep_until(from.into()).await;
    let mut server_cpu = CpuMeter::start(&server_pid.to_string())?;
    let mut gen_cpu = CpuMeter::start("self")?;
    tokio::time::sleep_until(until.into()).await;
    let (scpu, gcpu) = (server_cpu.lap()?, gen_cpu.lap()?);
    let mut logs = Vec::with_capacity(n);
    for t in tasks {
        logs.push(t.await?);
    }
    Ok(Step {
        clients: n,
        run,
        traffic: llhls::analyse(&logs, &window),
        secs: (until - from).as_secs_f64(),
        server_cpu: scpu,
        generator_cpu: gcpu,
    })
}

/// Runs the sweep (every client count, `--runs` times) against one server.
async fn sweep(
    args: &Args,
    server: &str,
    server_pid: u32,
    spawn: &dyn Fn(Instant, Window) -> JoinHandle<ClientLog>,
) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    'counts: for &n in &args.clients {
        for run in 1..=args.runs {
            let s = step(args, server_pid, n, run, spawn).await?;
            println!("{}", s.line(server));
            steps.push(s);
            tokio::time::sleep(Duration::from_secs(2)).await;
            if s.p99() > 1000.0 {
                println!("server={server}: p99 above 1 s: sweep stopped");
                break 'counts;
            }
        }
    }
    Ok(steps)
}

/// Medians over the runs of one client count.
#[derive(Debug, Clone, Copy)]
struct Medians {
    clients: usize,
    p50: f64,
    p99: f64,
    server_cpu: f64,
    server_per_gbit: f64,
    generator_cpu: f64,
    generator_per_gbit: f64,
    mbps: f64,
    any_generator_bound: bool,
    any_timeouts: bool,
}

fn medians(steps: &[Step]) -> Vec<Medians> {
    let mut counts: Vec<usize> = steps.iter().map(|s| s.clients).collect();
    counts.dedup();
    counts
        .into_iter()
        .map(|n| {
            let of: Vec<&Step> = steps.iter().filter(|s| s.clients == n).collect();
            let med =
                |f: &dyn Fn(&Step) -> f64| median(&of.iter().map(|s| f(s)).collect::<Vec<_>>());
            Medians {
                clients: n,
                p50: med(&|s| s.traffic.delay.map_or(f64::INFINITY, |d| d.p50)),
                p99: med(&|s| s.p99()),
                server_cpu: med(&|s| s.server_cpu),
                server_per_gbit: med(&|s| s.server_per_gbit()),
                generator_cpu: med(&|s| s.generator_cpu),
                generator_per_gbit: med(&|s| s.generator_per_gbit()),
                mbps: med(&|s| s.gbit() * 1e3 / s.secs),
                any_generator_bound: of.iter().any(|s| s.generator_bound()),
                any_timeouts: of.iter().any(|s| s.traffic.timeouts > 0),
            }
        })
        .collect()
}

/// Prints the per-count medians and the one-line summary of a server;
/// returns the summary as JSON.
fn summarise(server: &str, steps: &[Step], runs: usize) -> Value {
    let meds = medians(steps);
    for m in &meds {
        println!(
            "server={server} clients={:5} median of {runs} run(s): p50={:.1} ms p99={:.1} ms delivered={:.0} Mbit/s server_cpu={:.1}% ({:.3} cpu-s/Gbit) generator_cpu={:.1}% ({:.3} cpu-s/Gbit){}",
            m.clients,
            m.p50,
            m.p99,
            m.mbps,
            m.server_cpu,
            m.server_per_gbit,
            m.generator_cpu,
            m.generator_per_gbit,
            if m.any_generator_bound {
                " GENERATOR-BOUND"
            } else {
                ""
            }
        );
    }
    let best = meds
        .iter()
        .filter(|m| m.p99 <= GOAL_P99_MS && !m.any_timeouts && !m.any_generator_bound)
        .map(|m| m.clients)
        .max();
    let per_gbit = median(&meds.iter().map(|m| m.server_per_gbit).collect::<Vec<_>>());
    let gen_max = meds.iter().map(|m| m.generator_cpu).fold(0.0, f64::max);
    let bound: Vec<usize> = meds
        .iter()
        .filter(|m| m.any_generator_bound)
        .map(|m| m.clients)
        .collect();
    let mut line = format!("summary server={server}: ");
    let _ = match best {
        Some(b) => write!(
            line,
            "largest client count with median p99 <= {GOAL_P99_MS} ms: {b} (goal {GOAL_CLIENTS}: {}, {:.2}x)",
            if b >= GOAL_CLIENTS { "MET" } else { "NOT MET" },
            b as f64 / GOAL_CLIENTS as f64
        ),
        None => write!(
            line,
            "no client count met p99 <= {GOAL_P99_MS} ms (goal {GOAL_CLIENTS}: NOT MET)"
        ),
    };
    let _ = write!(
        line,
        "; server cpu-s per delivered Gbit (median over counts): {per_gbit:.3}; generator max {gen_max:.0}% of its core; generator-bound counts: {bound:?}"
    );
    println!("{line}");
    json!({
        "server": server,
        "steps": steps.iter().map(Step::json).collect::<Vec<_>>(),
        "largest_clients_p99_within_goal": best,
        "met": best.is_some_and(|b| b >= GOAL_CLIENTS),
        "server_cpu_s_per_gbit_median": per_gbit,
        "generator_cpu_pct_max": gen_max,
        "generator_bound_counts": bound,
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

/// Sweeps nginx serving `capture` (files under `root`).
async fn nginx_sweep(args: &Args, root: &std::path::Path, schedule: Schedule) -> Result<Vec<Step>> {
    let max_clients = args.clients.iter().copied().max().unwrap_or(0);
    std::fs::write(root.join("healthz"), "ok\n")?;
    let nginx = Nginx::start(root, max_clients, Some(args.origin_cpu), args.nice).await?;
    println!(
        "nginx: {} (config in {})",
        nginx.child.command(),
        nginx.dir().display()
    );
    let schedule = Arc::new(schedule);
    let epoch = Instant::now();
    let addr = nginx.http;
    let po = args.playlists_only;
    let spawn = move |at: Instant, window: Window| {
        let schedule = schedule.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            llhls::scheduled_client(addr, STREAM, schedule, epoch, po, window).await
        })
    };
    let steps = sweep(args, "nginx", nginx.child.pid(), &spawn).await;
    // Refused or reset connections are nginx's to explain: keep its words
    // before the temporary directory goes.
    if steps
        .as_ref()
        .map_or(true, |s| s.iter().any(|s| s.traffic.errors > 0))
    {
        let log = std::fs::read_to_string(nginx.dir().join("error.log"))
            .unwrap_or_else(|e| format!("(error log unreadable: {e})"));
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        println!("nginx error log, last lines (newest first):");
        for line in tail {
            println!("  {line}");
        }
    }
    steps
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
        webtransport: false,
        https: false,
        webrtc: false,
    })
    .await?;
    let ffmpeg = publish(
        origin.srt,
        STREAM,
        &path,
        true,
        Some(args.publisher_cpu),
        args.nice,
    )?;
    println!(
        "llhls-load: blocking-reload clients one server core sustains, every part within {GOAL_P99_MS} ms of availability (goal >= {GOAL_CLIENTS} clients; origin cpu per Gbit <= {GOAL_RATIO}x nginx)"
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
        "generator: current_thread runtime on cpus {}; nice {:?}; mode: {}; server: {:?}",
        allowed_cpus(),
        args.nice,
        if args.playlists_only {
            "playlists only"
        } else {
            "playlist + part"
        },
        args.server
    );
    // Wait for the first complete segment.
    http1::wait_for_200(
        origin.http,
        &format!("/live/{STREAM}/video.m3u8"),
        "the stream",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || Ok(()),
    )
    .await?;

    let mut summaries = Vec::new();
    let mut origin_steps = Vec::new();
    if args.server != ServerChoice::Nginx {
        let addr = origin.http;
        let po = args.playlists_only;
        let spawn = move |at: Instant, window: Window| {
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                llhls::blocking_client(addr, STREAM, po, window).await
            })
        };
        origin_steps = sweep(&args, "origin", origin.child.pid(), &spawn).await?;
    }
    let mut nginx_steps = Vec::new();
    if args.server != ServerChoice::Origin {
        let root = tempfile::Builder::new()
            .prefix("livestack-bench-capture")
            .tempdir()?;
        let schedule = llhls::capture(origin.http, STREAM, args.capture_parts, root.path()).await?;
        println!(
            "captured {} playlist versions ({} parts, repeating every {:.1} s) into {}",
            schedule.entries.len(),
            schedule
                .entries
                .iter()
                .map(|e| e.parts.len())
                .sum::<usize>(),
            schedule.period.as_secs_f64(),
            root.path().display()
        );
        // The origin and its publisher leave the server core to nginx.
        drop(ffmpeg);
        drop(origin);
        nginx_steps = nginx_sweep(&args, root.path(), schedule).await?;
    }
    if !origin_steps.is_empty() {
        summaries.push(summarise("origin", &origin_steps, args.runs));
    }
    if !nginx_steps.is_empty() {
        summaries.push(summarise("nginx", &nginx_steps, args.runs));
    }
    let mut ratio_json = Value::Null;
    if !origin_steps.is_empty() && !nginx_steps.is_empty() {
        let (o, n) = (medians(&origin_steps), medians(&nginx_steps));
        let mut ratios = Vec::new();
        for om in &o {
            if let Some(nm) = n.iter().find(|m| m.clients == om.clients) {
                let r = om.server_per_gbit / nm.server_per_gbit;
                println!(
                    "clients={:5}: origin {:.3} / nginx {:.3} cpu-s per delivered Gbit = {r:.2}x",
                    om.clients, om.server_per_gbit, nm.server_per_gbit
                );
                ratios.push(r);
            }
        }
        let r = median(&ratios);
        println!(
            "summary ratio: origin/nginx cpu per delivered Gbit/s, median over client counts: {r:.2}x (aim <= {GOAL_RATIO}x: {})",
            if r <= GOAL_RATIO { "MET" } else { "NOT MET" }
        );
        ratio_json =
            json!({"per_count": ratios, "median": r, "aim": GOAL_RATIO, "met": r <= GOAL_RATIO});
    }
    println!(
        "{}",
        json!({
            "bench": "llhls-load",
            "command": command_line(),
            "playlists_only": args.playlists_only,
            "nice": args.nice,
            "source_bps": bps,
            "servers": summaries,
            "origin_to_nginx_cpu_per_gbit": ratio_json,
            "goal_clients": GOAL_CLIENTS,
            "goal_p99_ms": GOAL_P99_MS,
            "generator_bound_pct": GENERATOR_BOUND_PCT,
        })
    );
    Ok(())
}
