//! # srt-ingest-vs-libsrt: the origin's SRT ingest CPU beside libsrt's own receiver
//!
//! **What it measures.** The CPU one ~6 Mbit/s SRT publish costs the
//! origin (SRT reception with srt-tokio, MPEG-TS demuxing, the relay and
//! CMAF / LL-HLS packaging, no viewers) next to the CPU that libsrt's own
//! `srt-live-transmit` spends only *receiving* the same stream and writing
//! it to /dev/null. Goal (issue 8): the origin, packaging included, costs
//! no more than libsrt's receiver (ratio ≤ 1.0).
//!
//! **How.** The source is the 1080p30 ≈ 6 Mbit/s H.264 + AAC TS that
//! `ingest-cpu` uses (encoded once, cached). Each run measures both
//! receivers back to back, each with its own fresh ffmpeg publisher
//! (`ffmpeg -stream_loop -1 -re -c copy -f mpegts srt://…`, SRT latency
//! 120 ms, 1316-byte payloads): warm-up, then utime + stime of the receiver
//! process (`/proc/PID/stat`, all threads) over `--window-secs`. The
//! origin runs with default threads, the receiver as
//! `srt-live-transmit "srt://:PORT?mode=listener&latency=120" file://con`
//! with stdout to /dev/null. Reported: CPU-seconds per window for each,
//! their ratio per run, and the medians over `--runs`.
//!
//! **Run** (needs the release origin binary and `srt-live-transmit`,
//! Debian package `srt-tools`):
//!
//! ```sh
//! cargo build --release -p livestack -p livestack-bench
//! target/release/srt-ingest-vs-libsrt --runs 3
//! ```

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use livestack_bench::{
    command_line,
    http1::Conn,
    media::{self, EncodeSpec},
    process::{CpuMeter, Guarded, OriginProcess, OriginSpec, free_udp_addr, on_path, publish},
    stats::median,
};
use serde_json::json;

/// Origin SRT ingest CPU vs `srt-live-transmit`.
#[derive(Debug, Parser)]
struct Args {
    /// Runs (each measures both receivers; medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds of warm-up after the publisher connected.
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Length of the CPU window, seconds.
    #[arg(long, default_value_t = 20)]
    window_secs: u64,
}

/// CPU-seconds `pid` spends over `window`.
async fn cpu_seconds(pid: u32, window: Duration) -> Result<f64> {
    let mut m = CpuMeter::start(&pid.to_string())?;
    tokio::time::sleep(window).await;
    Ok(m.lap()? / 100.0 * window.as_secs_f64())
}

async fn origin_run(args: &Args, source: &std::path::Path) -> Result<f64> {
    let origin = OriginProcess::start(&OriginSpec {
        threads: None,
        cpu: None,
        part_target: Duration::from_millis(200),
        nice: None,
        webtransport: false,
        https: false,
        webrtc: false,
    })
    .await?;
    let mut publisher = publish(origin.srt, "bench", source, true, None, None)?;
    let mut conn = Conn::connect(origin.http).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = conn.get("/streams", true).await?;
        if r.status == 200 && conn.body().windows(7).any(|w| w == b"\"bench\"") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the stream did not come up on the origin");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    let cpu = cpu_seconds(origin.child.pid(), Duration::from_secs(args.window_secs)).await?;
    publisher.check_running()?;
    Ok(cpu)
}

async fn libsrt_run(args: &Args, source: &std::path::Path) -> Result<f64> {
    let addr = free_udp_addr()?;
    let mut receiver = Guarded::spawn(
        &[],
        "srt-live-transmit",
        &[
            "-q".to_owned(),
            format!("srt://:{}?mode=listener&latency=120", addr.port()),
            "file://con".to_owned(),
        ],
    )?;
    // Let it bind before the caller dials.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut publisher = publish(addr, "bench", source, true, None, None)?;
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    receiver.check_running()?;
    publisher.check_running()?;
    let cpu = cpu_seconds(receiver.pid(), Duration::from_secs(args.window_secs)).await?;
    receiver.check_running()?;
    publisher.check_running()?;
    Ok(cpu)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !on_path("srt-live-transmit") {
        bail!("srt-live-transmit is not on PATH (Debian package srt-tools)");
    }
    let spec = EncodeSpec {
        width: 1920,
        height: 1080,
        fps: 30,
        seconds: 20,
        video_kbps: 5800,
        audio_kbps: 128,
        gop_secs: 2,
    };
    let path = media::encoded(&spec)?;
    let bps = media::bitrate(&path)?;
    println!("srt-ingest-vs-libsrt: origin ingest + packaging vs srt-live-transmit receiving");
    println!("command: {}", command_line());
    println!(
        "source: {} ({:.2} Mbit/s); {} s window after {} s warm-up; {} run(s)",
        path.display(),
        bps as f64 / 1e6,
        args.window_secs,
        args.warmup_secs,
        args.runs
    );
    let (mut origin, mut libsrt, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let o = origin_run(&args, &path).await?;
        let l = libsrt_run(&args, &path).await?;
        println!(
            "run={run} origin={o:.3} cpu-s srt-live-transmit={l:.3} cpu-s per {} s ratio={:.2}",
            args.window_secs,
            o / l
        );
        origin.push(o);
        libsrt.push(l);
        ratio.push(o / l);
    }
    println!(
        "summary: median origin={:.3} cpu-s, srt-live-transmit={:.3} cpu-s per {} s; ratio origin/libsrt median={:.2} (goal <= 1.0)",
        median(&origin),
        median(&libsrt),
        args.window_secs,
        median(&ratio)
    );
    println!(
        "{}",
        json!({
            "bench": "srt-ingest-vs-libsrt",
            "command": command_line(),
            "source_bps": bps,
            "window_secs": args.window_secs,
            "origin_cpu_s": origin,
            "libsrt_cpu_s": libsrt,
            "ratio": ratio,
            "median_ratio": median(&ratio),
        })
    );
    Ok(())
}
