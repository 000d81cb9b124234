//! # ingest-cpu: CPU per ingested 6 Mbit/s stream
//!
//! **What it measures.** The origin's CPU cost of ingesting live streams
//! with no viewers: SRT reception, MPEG-TS demuxing, the fan-out and CMAF /
//! LL-HLS packaging, as a percentage of one core per 6 Mbit/s stream.
//! (No goal was set; it sizes how many publishers an origin core takes.)
//!
//! **How.** Encodes (once, cached) 20 s of `testsrc2` 1920x1080 30 fps
//! H.264 at 5.8 Mbit/s (2 s GOP) + AAC 128 kbit/s, ≈ 6 Mbit/s with TS
//! overhead. For each K in `--streams`: starts a fresh release
//! `livestack origin` (default threads, not pinned), starts K
//! `ffmpeg -stream_loop -1 -re -i FILE -c copy -f mpegts srt://…`
//! publishers (streams `s0`…), waits until `/streams` lists all K, warms up,
//! then samples the origin's CPU (utime + stime of every thread, from
//! `/proc/PID/stat`) over `--windows` windows of `--window-secs`. The
//! figure is the median window, divided by K for the per-stream cost.
//! ffmpeg's own CPU (the publishers share the machine) is measured the same
//! way and reported separately; it is not part of the origin's figure.
//!
//! **Run** (needs the release origin binary):
//!
//! ```sh
//! cargo build --release -p livestack
//! cargo run --release -p livestack-bench --bin ingest-cpu -- --streams 1,4,8
//! ```

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use livestack_bench::{
    command_line,
    http1::Conn,
    media::{self, EncodeSpec},
    process::{CpuMeter, OriginProcess, OriginSpec, publish},
    stats::{Summary, median, show},
};
use serde_json::json;

/// Origin CPU per ingested stream.
#[derive(Debug, Parser)]
struct Args {
    /// Concurrent publisher counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    streams: Vec<usize>,
    /// Seconds of warm-up once every stream is live.
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Length of one CPU sampling window, seconds.
    #[arg(long, default_value_t = 5)]
    window_secs: u64,
    /// Sampling windows per K (the median is reported).
    #[arg(long, default_value_t = 6)]
    windows: usize,
}

/// Number of live streams the origin lists at `/streams`.
async fn live_streams(conn: &mut Conn) -> Result<usize> {
    let r = conn.get("/streams", true).await?;
    if r.status != 200 {
        bail!("/streams answered {}", r.status);
    }
    Ok(conn.body().iter().filter(|&&b| b == b'"').count() / 2)
}

/// Figures for one K.
#[derive(Debug)]
struct Step {
    streams: usize,
    origin: Summary,
    ffmpeg: Summary,
}

async fn step(args: &Args, source: &std::path::Path, k: usize) -> Result<Step> {
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
    let mut publishers = Vec::new();
    for i in 0..k {
        publishers.push(publish(
            origin.srt,
            &format!("s{i}"),
            source,
            true,
            None,
            None,
        )?);
    }
    let mut conn = Conn::connect(origin.http).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while live_streams(&mut conn).await? < k {
        if Instant::now() > deadline {
            bail!(
                "only {} of {k} streams came up",
                live_streams(&mut conn).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    let mut o = CpuMeter::start(&origin.child.pid().to_string())?;
    let mut f = publishers
        .iter()
        .map(|p| CpuMeter::start(&p.pid().to_string()))
        .collect::<Result<Vec<_>>>()?;
    let (mut ow, mut fw) = (Vec::new(), Vec::new());
    for _ in 0..args.windows {
        tokio::time::sleep(Duration::from_secs(args.window_secs)).await;
        ow.push(o.lap()?);
        let mut sum = 0.0;
        for m in &mut f {
            sum += m.lap()?;
        }
        fw.push(sum);
    }
    let still = live_streams(&mut conn).await?;
    if still < k {
        bail!("only {still} of {k} streams still live after measuring");
    }
    for p in &mut publishers {
        p.check_running()?;
    }
    match (Summary::of(&ow), Summary::of(&fw)) {
        (Some(origin), Some(ffmpeg)) => Ok(Step {
            streams: k,
            origin,
            ffmpeg,
        }),
        _ => bail!("no CPU window measured"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
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
    println!("ingest-cpu: origin CPU per ingested stream, no viewers");
    println!("command: {}", command_line());
    println!(
        "source: {} ({:.2} Mbit/s) published with ffmpeg -stream_loop -1 -re -c copy over SRT; {} windows of {} s per K",
        path.display(),
        bps as f64 / 1e6,
        args.windows,
        args.window_secs
    );
    let mut steps = Vec::new();
    for &k in &args.streams {
        let s = step(&args, &path, k).await?;
        println!(
            "streams={:2} origin cpu % of one core: median={:.2} per stream={:.2} | windows {} | ffmpeg (all publishers) median={:.1}%",
            s.streams,
            s.origin.p50,
            s.origin.p50 / k as f64,
            show(Some(&s.origin)),
            s.ffmpeg.p50
        );
        steps.push(s);
    }
    let per_stream: Vec<f64> = steps
        .iter()
        .map(|s| s.origin.p50 / s.streams as f64)
        .collect();
    println!(
        "median per-stream cost across K: {:.2} % of one core per {:.1} Mbit/s stream",
        median(&per_stream),
        bps as f64 / 1e6
    );
    let json_steps: Vec<_> = steps
        .iter()
        .map(|s| {
            json!({
                "streams": s.streams,
                "origin_cpu_pct": Summary::json(Some(&s.origin)),
                "origin_cpu_pct_per_stream": s.origin.p50 / s.streams as f64,
                "ffmpeg_cpu_pct": Summary::json(Some(&s.ffmpeg)),
            })
        })
        .collect();
    println!(
        "{}",
        json!({
            "bench": "ingest-cpu",
            "command": command_line(),
            "source_bps": bps,
            "steps": json_steps,
            "median_cpu_pct_per_stream": median(&per_stream),
        })
    );
    Ok(())
}
