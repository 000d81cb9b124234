//! # glass-to-glass: WHIP publisher → origin → WHEP viewer, frame latency
//!
//! **What it measures.** For every video frame, the time from the moment
//! a WHIP publisher hands the encoded frame to its WebRTC stack to the
//! moment a WHEP viewer's WebRTC stack has the whole frame again, through
//! a release origin on loopback. **Goal: p95 ≤ 150 ms.**
//!
//! Included: the publisher's packetization, SRTP and UDP send; the
//! origin's receive, SRTP decryption, depacketization, ingest into the
//! media model, fan-out, WHEP feed (Annex B), packetization and SRTP for
//! the viewer; the viewer's receive, decryption and frame assembly
//! (str0m's depacketizer releases a frame once its last packet is in).
//! **Not included:** camera capture, encoding, the network, the
//! viewer's jitter buffer, decoding and rendering: a browser adds its
//! encoder's and decoder's delay and a jitter buffer of tens of ms on
//! top.
//!
//! **How.**
//! 1. The `whep-load` source: 640x360 30 fps H.264 (no B-frames, 2 s GOP)
//!    at 930 kbit/s + Opus 64 kbit/s, from ffmpeg, cached.
//! 2. The release origin, pinned to `--origin-cpu` (default 1), one
//!    runtime thread, `--webrtc` on loopback.
//! 3. In this process: a str0m WHIP publisher sends the frames in real
//!    time; before each video frame's first slice it writes an SEI
//!    (`user_data_unregistered`, our UUID) holding the frame's number, and
//!    records when it hands the frame to str0m. A str0m WHEP viewer
//!    decrypts and depacketizes everything; for each frame it reads the
//!    number from the SEI (the origin passes SEI NAL units through) and
//!    takes **latency = frame complete at the viewer − frame handed over
//!    by the publisher** (one clock: the same process).
//! 4. With `--load N`, N more WHEP viewers (counting only, as
//!    `whep-load`'s) play the stream during the run: the latency with the
//!    SFU loaded.
//! 5. The first `--skip` seconds (connection, the first GOP that the feed
//!    replays at once to a new viewer) are left out.
//!
//! The run repeats `--runs` times (fresh origin each); the report gives
//! each run and the median across runs of each percentile.
//!
//! **Run** (release build):
//!
//! ```sh
//! taskset -c 0 target/release/glass-to-glass --runs 3
//! ```

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Parser;
use livestack_bench::{
    command_line,
    process::{OriginProcess, OriginSpec},
    stats::{Summary, show},
    webrtc::{self, Decrypt, SentLog, Source, SourceSpec, ViewerCounters},
};
use serde_json::json;
use tokio::sync::watch;

/// Frame latency WHIP → origin → WHEP.
#[derive(Debug, Parser)]
struct Args {
    /// Repetitions (fresh origin each).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Seconds left out at the start of a run.
    #[arg(long, default_value_t = 3)]
    skip: u64,
    /// Other WHEP viewers of the stream during the run (counting RTP
    /// headers only, as `whep-load`'s), started 200 per second before the
    /// measured one: the latency with the SFU loaded.
    #[arg(long, default_value_t = 0)]
    load: usize,
    /// CPU the origin is pinned to.
    #[arg(long, default_value_t = 1)]
    origin_cpu: usize,
    /// Niceness of the origin and of this process (e.g. -10, needs root),
    /// so that other work on a shared machine does not take their cores.
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
}

/// Goal for the p95 latency, milliseconds.
const GOAL_P95_MS: f64 = 150.0;

/// One run: the latencies, milliseconds, and frames received without a
/// known send time (should be 0).
async fn run(args: &Args, source: &Arc<Source>) -> Result<(Vec<f64>, usize)> {
    let origin = OriginProcess::start(&OriginSpec {
        threads: Some(1),
        cpu: Some(args.origin_cpu),
        part_target: Duration::from_millis(200),
        nice: args.nice,
        webtransport: false,
        https: false,
        webrtc: true,
    })
    .await?;
    let http = origin.http;
    let (stop_tx, stop) = watch::channel(false);
    let sent: SentLog = Arc::new(Mutex::new(Vec::new()));
    let publisher = {
        let (source, sent, stop) = (source.clone(), sent.clone(), stop.clone());
        tokio::spawn(async move { webrtc::publish(http, "g2g", source, sent, stop).await })
    };
    livestack_bench::http1::wait_for_200(
        http,
        "/live/g2g/index.m3u8",
        "the WHIP stream",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || Ok(()),
    )
    .await?;
    let mut load = Vec::with_capacity(args.load);
    for _ in 0..args.load {
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let counters = Arc::new(ViewerCounters::default());
            let _ = webrtc::view(http, "g2g", Decrypt::ControlOnly, counters, |_| {}, stop).await;
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let received: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let viewer = {
        let (received, stop) = (received.clone(), stop.clone());
        tokio::spawn(async move {
            webrtc::view(
                http,
                "g2g",
                Decrypt::Full,
                Arc::new(ViewerCounters::default()),
                move |d| {
                    let now = Instant::now();
                    if d.params.spec().codec.is_video()
                        && let Some(n) = webrtc::read_tag(&d.data)
                    {
                        received
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((n, now));
                    }
                },
                stop,
            )
            .await
        })
    };
    let from = Instant::now() + Duration::from_secs(args.skip);
    tokio::time::sleep(Duration::from_secs(args.skip + args.seconds)).await;
    let _ = stop_tx.send(true);
    viewer.await?.context("viewer")?;
    for l in load {
        l.abort();
    }
    publisher.await?.context("publisher")?;
    drop(origin);
    let sent = sent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let received = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut latencies = Vec::new();
    let mut unmatched = 0;
    for (n, at) in received.iter() {
        match usize::try_from(*n)
            .ok()
            .and_then(|i| sent.get(i).copied().flatten())
        {
            Some(t) if t >= from => {
                latencies.push(at.saturating_duration_since(t).as_secs_f64() * 1e3);
            }
            Some(_) => {}
            None => unmatched += 1,
        }
    }
    Ok((latencies, unmatched))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.nice {
        livestack_bench::process::renice_self(n)?;
    }
    let source = Arc::new(webrtc::source(&SourceSpec {
        width: 640,
        height: 360,
        seconds: 30,
        video_kbps: 930,
        audio_kbps: 64,
        gop_secs: 2,
    })?);
    println!(
        "glass-to-glass: video frame handed to the WHIP publisher's stack -> frame complete at a WHEP viewer, through the origin on loopback (goal p95 <= {GOAL_P95_MS} ms)"
    );
    println!("command: {}", command_line());
    println!(
        "source: 640x360 30 fps H.264 + Opus, {:.2} Mbit/s; {} run(s) of {} s; {} other viewers",
        source.bps / 1e6,
        args.runs,
        args.seconds,
        args.load
    );
    let mut sums = Vec::new();
    let mut per_run = Vec::new();
    for i in 0..args.runs {
        let (lat, unmatched) = run(&args, &source).await?;
        let s = Summary::of(&lat);
        println!(
            "run {}: latency ms {} (unmatched {unmatched})",
            i + 1,
            show(s.as_ref())
        );
        per_run.push(json!({"latency_ms": Summary::json(s.as_ref()), "unmatched": unmatched}));
        sums.extend(s);
    }
    let Some(Summary {
        n: frames,
        p50,
        p95,
        p99,
        max,
        ..
    }) = Summary::median_of(&sums)
    else {
        bail!("no frame was measured");
    };
    let verdict = if p95 <= GOAL_P95_MS { "MET" } else { "NOT MET" };
    println!(
        "median of {} runs ({frames} frames): p50={p50:.3} ms p95={p95:.3} ms p99={p99:.3} ms max={max:.3} ms; goal p95 <= {GOAL_P95_MS} ms: {verdict} ({:.3}x of goal)",
        sums.len(),
        p95 / GOAL_P95_MS
    );
    println!(
        "{}",
        json!({
            "bench": "glass-to-glass",
            "command": command_line(),
            "source_bps": source.bps,
            "load": args.load,
            "median_ms": {"p50": p50, "p95": p95, "p99": p99, "max": max},
            "frames": frames,
            "goal_p95_ms": GOAL_P95_MS,
            "met": p95 <= GOAL_P95_MS,
            "runs": per_run,
        })
    );
    Ok(())
}
