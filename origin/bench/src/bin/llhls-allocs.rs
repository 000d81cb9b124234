//! # llhls-allocs: heap allocations per delivered LL-HLS part
//!
//! **What it measures.** How many heap allocations the origin makes per
//! part of a live stream, in steady state, as a function of the number of
//! blocking-reload viewers: in total per part (ingest, packaging and
//! serving), per delivered (viewer, part) pair (one blocking playlist
//! response plus one part response), and the **marginal allocations per
//! viewer per part**, the slope between client counts, which is what the
//! hot path costs each extra viewer. **Goal: no per-viewer allocation on
//! the hot path in steady state** (a marginal figure of 0; today's figure
//! is whatever this prints).
//!
//! **How.** The product binary is left untouched: this benchmark runs the
//! origin library in-process (`livestack_origin::Origin::start` through
//! `livestack_test_harness::start_origin`, 200 ms parts, in-memory control plane) on
//! its own tokio runtime with one worker thread (like `livestack --threads
//! 1`), and installs a counting `#[global_allocator]`
//! ([`livestack_bench::alloc_count`]) that counts only on that runtime's
//! threads. The viewers ([`livestack_bench::llhls::blocking_client`], the
//! same as `llhls-load`'s) run on the main thread's `current_thread`
//! runtime, whose allocations do not count. ffmpeg publishes the same
//! 1.8 Mbit/s source as `llhls-load` over SRT in a loop
//! (`-stream_loop -1 -re -c copy`). Per client count: clients start over
//! `--ramp-secs`, then `--warmup-secs`, then the counter is read at the
//! start and end of `--measure-secs`; parts whose availability falls in
//! that window are the parts counted. Every count repeats `--runs` times;
//! the summary takes medians.
//!
//! Allocation counts do not depend on machine load the way times do, so
//! this benchmark's figures are stable on a busy machine (a slow origin can
//! still change them a little: coalesced wake-ups, queue growth).
//!
//! **Run:**
//!
//! ```sh
//! cargo build --release -p livestack-bench --bin llhls-allocs
//! target/release/llhls-allocs                       # 1, 100, 200 clients
//! target/release/llhls-allocs --clients 1,200,400 --runs 3
//! ```

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Parser;
use livestack_bench::{
    alloc_count::{self, Counting, Snapshot},
    command_line, http1,
    llhls::{self, Traffic, Window},
    media::{self, EncodeSpec},
    process::publish,
    stats::median,
};
use serde_json::json;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap allocations per delivered LL-HLS part of an in-process origin.
#[derive(Debug, Parser)]
struct Args {
    /// Client counts, comma-separated (at least two for the marginal
    /// figure).
    #[arg(long, value_delimiter = ',', default_value = "1,100,200")]
    clients: Vec<usize>,
    /// Repetitions of each client count.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Seconds over which a step's clients start.
    #[arg(long, default_value_t = 3)]
    ramp_secs: u64,
    /// Seconds after the ramp before counting.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Seconds counted per step.
    #[arg(long, default_value_t = 10)]
    measure_secs: u64,
}

/// The stream's name.
const STREAM: &str = "bench";

/// Figures of one step.
#[derive(Debug, Clone, Copy)]
struct Step {
    clients: usize,
    traffic: Traffic,
    counted: Snapshot,
}

impl Step {
    fn per_part(&self) -> f64 {
        self.counted.allocs as f64 / self.traffic.parts as f64
    }
    fn per_client_part(&self) -> f64 {
        self.counted.allocs as f64 / self.traffic.delivered as f64
    }
    fn bytes_per_part(&self) -> f64 {
        self.counted.bytes as f64 / self.traffic.parts as f64
    }
}

/// Starts the origin on its own counting runtime in a thread; returns its
/// SRT and HTTP addresses and a sender that stops it.
fn start_origin() -> Result<(std::net::SocketAddr, std::net::SocketAddr, mpsc::Sender<()>)> {
    let (addrs_tx, addrs_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("origin".to_owned())
        .spawn(move || {
            alloc_count::count_this_thread();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .on_thread_start(alloc_count::count_this_thread)
                .build()
                .expect("origin runtime");
            rt.block_on(async move {
                let origin = livestack_test_harness::start_origin(|c| {
                    c.hls.part_target = Duration::from_millis(200);
                })
                .await;
                let _ = addrs_tx.send((origin.srt_addr, origin.http_addr));
                // Park this thread (not a worker) until told to stop.
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                drop(origin);
            });
        })?;
    let (srt, http) = addrs_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the in-process origin did not start")?;
    Ok((srt, http, stop_tx))
}

async fn step(args: &Args, http: std::net::SocketAddr, n: usize) -> Result<Step> {
    let ramp = Duration::from_secs(args.ramp_secs);
    let t0 = Instant::now();
    let from = t0 + ramp + Duration::from_secs(args.warmup_secs);
    let until = from + Duration::from_secs(args.measure_secs);
    let window = Window {
        from,
        until,
        stop: until + Duration::from_secs(1),
    };
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let at = t0 + ramp.mul_f64(i as f64 / n as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                llhls::blocking_client(http, STREAM, false, window).await
            })
        })
        .collect();
    tokio::time::sleep_until(from.into()).await;
    let before = alloc_count::snapshot();
    tokio::time::sleep_until(until.into()).await;
    let counted = alloc_count::snapshot() - before;
    let mut logs = Vec::with_capacity(n);
    for t in tasks {
        logs.push(t.await?);
    }
    Ok(Step {
        clients: n,
        traffic: llhls::analyse(&logs, &window),
        counted,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
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
    let (srt, http, stop) = start_origin()?;
    let _ffmpeg = publish(srt, STREAM, &path, true, None, None)?;
    println!(
        "llhls-allocs: origin heap allocations per delivered LL-HLS part (goal: 0 per viewer on the hot path in steady state)"
    );
    println!("command: {}", command_line());
    println!(
        "in-process origin (1 worker thread, counted) on {http}; viewers on the main thread (not counted); source {}",
        path.display()
    );
    http1::wait_for_200(
        http,
        &format!("/live/{STREAM}/video.m3u8"),
        "the stream",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || Ok(()),
    )
    .await?;
    let mut steps = Vec::new();
    for &n in &args.clients {
        for run in 1..=args.runs {
            let s = step(&args, http, n).await?;
            let t = &s.traffic;
            println!(
                "clients={:4} run={run} parts={} delivered={} missing={} errors={} timeouts={} | allocations {} ({} bytes): {:.1}/part, {:.2}/delivered client-part, {:.0} bytes/part",
                n,
                t.parts,
                t.delivered,
                t.missing,
                t.errors,
                t.timeouts,
                s.counted.allocs,
                s.counted.bytes,
                s.per_part(),
                s.per_client_part(),
                s.bytes_per_part(),
            );
            steps.push(s);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let _ = stop.send(());

    // Medians per client count, then slopes between consecutive counts.
    let mut counts: Vec<usize> = steps.iter().map(|s| s.clients).collect();
    counts.dedup();
    let per_count: Vec<(usize, f64, f64)> = counts
        .iter()
        .map(|&n| {
            let of: Vec<&Step> = steps.iter().filter(|s| s.clients == n).collect();
            let pp = median(&of.iter().map(|s| s.per_part()).collect::<Vec<_>>());
            let pcp = median(&of.iter().map(|s| s.per_client_part()).collect::<Vec<_>>());
            (n, pp, pcp)
        })
        .collect();
    let slopes: Vec<f64> = per_count
        .windows(2)
        .filter(|w| w[1].0 != w[0].0)
        .map(|w| (w[1].1 - w[0].1) / (w[1].0 as f64 - w[0].0 as f64))
        .collect();
    let marginal = median(&slopes);
    let (n_max, pp_max, pcp_max) = per_count.last().copied().unwrap_or((0, f64::NAN, f64::NAN));
    println!(
        "summary: marginal allocations per viewer per part (playlist + part responses; median slope over {} count pairs): {marginal:.2}; at {n_max} clients {pp_max:.0} per part, {pcp_max:.2} per delivered client-part; at {} client(s) {:.0} per part (ingest + packaging + serving)",
        slopes.len(),
        per_count.first().map_or(0, |c| c.0),
        per_count.first().map_or(f64::NAN, |c| c.1),
    );
    println!(
        "{}",
        json!({
            "bench": "llhls-allocs",
            "command": command_line(),
            "steps": steps.iter().map(|s| json!({
                "clients": s.clients,
                "parts": s.traffic.parts,
                "delivered": s.traffic.delivered,
                "missing": s.traffic.missing,
                "errors": s.traffic.errors,
                "timeouts": s.traffic.timeouts,
                "allocs": s.counted.allocs,
                "bytes": s.counted.bytes,
                "allocs_per_part": s.per_part(),
                "allocs_per_client_part": s.per_client_part(),
            })).collect::<Vec<_>>(),
            "marginal_allocs_per_client_part": marginal,
            "slopes": slopes,
        })
    );
    Ok(())
}
