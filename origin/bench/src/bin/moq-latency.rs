//! # moq-latency: frame ingested → frame at a MoQ subscriber
//!
//! **What it measures.** How long after a video frame is handed to the
//! origin's fan-out a Media over QUIC subscriber on loopback has it: the
//! origin's contribution (relay consumer → hang frame → moq-net group →
//! QUIC stream) plus the subscriber's QUIC and moq-net receive path,
//! excluding the network and the encoder. **Goal: p99 ≤ 5 ms.**
//!
//! **How.**
//! 1. The source of `part-latency`: 1280x720 30 fps H.264 (2 s GOP, 2
//!    B-frames) + AAC, ≈ 6 Mbit/s, demuxed ahead of time.
//! 2. An in-process origin with `--webtransport` on loopback serves a
//!    stream fed by `livestack_origin::fanout::broadcast()`; a publisher task
//!    sends the events paced in real time by DTS and records the `Instant`
//!    each video frame is handed to `producer.send`, keyed by its
//!    presentation time in microseconds (what the hang frame carries).
//! 3. A moq-net subscriber over raw QUIC (every MoQ ALPN offered; moq-lite
//!    is negotiated) in the same process subscribes to the `video` track and
//!    records when each frame is read.
//! 4. **latency = frame read − frame sent**, for every frame after the
//!    subscription started (it joins at a keyframe).
//!
//! The run repeats `--runs` times (fresh origin each); the report gives each
//! run and the median across runs of each percentile.
//!
//! **Run** (release build; encodes the source on the first run):
//!
//! ```sh
//! cargo run --release -p livestack-bench --bin moq-latency
//! cargo run --release -p livestack-bench --bin moq-latency -- --runs 1 --seconds 20
//! ```

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Parser;
use livestack_bench::{
    command_line,
    media::{self, EncodeSpec},
    process::renice_self,
    stats::{Summary, show},
};
use livestack_media::model::Timescale;
use livestack_origin::fanout::{MediaEvent, broadcast};
use serde_json::json;

/// Frame latency of the in-process origin's MoQ egress.
#[derive(Debug, Parser)]
struct Args {
    /// Length of the encoded source, seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u32,
    /// Repetitions (fresh origin each).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Niceness for the measured process (e.g. -10, needs root).
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
}

/// Goal for the p99 latency, milliseconds.
const GOAL_P99_MS: f64 = 5.0;

/// One run: latencies of the frames read, milliseconds, and how many frames
/// were read but never sent (should be 0).
async fn run(events: &[media::Paced]) -> Result<(Vec<f64>, usize)> {
    let micros = Timescale::new(1_000_000).context("1 MHz")?;
    let origin = livestack_test_harness::start_origin(|c| {
        c.webtransport = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let wt = origin.webtransport_addr.context("MoQ listener")?;
    let hash = origin.certificate_sha256.clone().context("certificate")?;
    let (producer, subscriber) = broadcast();
    origin.streams.start("bench", &subscriber);
    let video_frames = events.iter().filter(|t| t.video).count();

    let reader = tokio::spawn(async move {
        livestack_test_harness::quic::moq_subscribe(
            wt,
            moq_net::ALPNS,
            &hash,
            "bench",
            video_frames,
        )
        .await
    });

    // Publisher: real-time pacing by DTS.
    let start = Instant::now() + Duration::from_millis(500);
    let base = events.first().map_or(0, |t| t.due);
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    for t in events {
        let at = start + Duration::from_micros(((t.due - base).max(0) as u64) * 100 / 9);
        tokio::time::sleep_until(at.into()).await;
        let key = match &t.event {
            MediaEvent::Frame { frame, .. } if t.video => {
                Some(u64::try_from(frame.pts.rebase(micros)?.ticks())?)
            }
            _ => None,
        };
        let now = Instant::now();
        producer.send(t.event.clone());
        if let Some(k) = key {
            sent.insert(k, now);
        }
    }
    drop(producer);
    let report = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .context("the subscriber did not finish")??
        .map_err(|e| anyhow::anyhow!("subscriber: {e}"))?;
    drop(origin);
    let mut latencies = Vec::new();
    let mut unmatched = 0;
    for f in &report.frames {
        match sent.get(&f.timestamp_us) {
            Some(at) => {
                latencies.push(f.received.saturating_duration_since(*at).as_secs_f64() * 1e3)
            }
            None => unmatched += 1,
        }
    }
    Ok((latencies, unmatched))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.nice {
        renice_self(n)?;
    }
    let spec = EncodeSpec {
        width: 1280,
        height: 720,
        fps: 30,
        seconds: args.seconds,
        video_kbps: 5500,
        audio_kbps: 128,
        gop_secs: 2,
    };
    let path = media::encoded(&spec)?;
    let bps = media::bitrate(&path)?;
    let events = media::demux_paced(&path)?;
    println!(
        "moq-latency: video frame ingested -> read by a MoQ subscriber (goal p99 <= {GOAL_P99_MS} ms)"
    );
    println!("command: {}", command_line());
    println!(
        "source: {} ({:.2} Mbit/s, {} events); in-process origin, raw QUIC subscriber on loopback, {} run(s), nice {:?}",
        path.display(),
        bps as f64 / 1e6,
        events.len(),
        args.runs,
        args.nice
    );
    let mut sums = Vec::new();
    let mut per_run = Vec::new();
    for i in 0..args.runs {
        let (lat, unmatched) = run(&events).await?;
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
    let verdict = if p99 <= GOAL_P99_MS { "MET" } else { "NOT MET" };
    println!(
        "median of {} runs ({frames} frames): p50={p50:.3} ms p95={p95:.3} ms p99={p99:.3} ms max={max:.3} ms; goal p99 <= {GOAL_P99_MS} ms: {verdict} ({:.2}x of goal)",
        sums.len(),
        p99 / GOAL_P99_MS
    );
    println!(
        "{}",
        json!({
            "bench": "moq-latency",
            "command": command_line(),
            "source_bps": bps,
            "nice": args.nice,
            "median_ms": {"p50": p50, "p95": p95, "p99": p99, "max": max},
            "frames": frames,
            "goal_p99_ms": GOAL_P99_MS,
            "met": p99 <= GOAL_P99_MS,
            "runs": per_run,
        })
    );
    Ok(())
}
