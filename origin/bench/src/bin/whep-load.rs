//! # whep-load: WHEP viewers one origin core sustains
//!
//! **What it measures.** How many WebRTC (WHEP) viewers of one ≈ 1 Mbit/s
//! H.264 + Opus stream the origin serves from one core with **no loss**
//! on loopback, and the origin's CPU per viewer. **Goal: ≥ 1,000
//! viewers** (mediasoup's rule of thumb is ~500 per core; SRS reported
//! 2,000 at 600 kbit/s).
//!
//! **How.**
//! 1. ffmpeg encodes (once, cached) 640x360 30 fps H.264 (baseline,
//!    `-tune zerolatency`, no B-frames, 2 s GOP) at 930 kbit/s and a sine in
//!    Opus at 64 kbit/s (20 ms packets): ≈ 1 Mbit/s of payload.
//! 2. The release origin binary runs pinned to `--origin-cpu` (default 1),
//!    one runtime thread, with `--webrtc` on loopback. A fresh origin per
//!    step.
//! 3. A str0m **WHIP publisher** in this process (its own thread) sends
//!    the source in real time, looping (the path of a browser or OBS
//!    publishing over WebRTC: the origin depacketizes it, its fan-out
//!    carries it, and its SFU packetizes it again for every viewer).
//!    ffmpeg over SRT was not used: the origin does not send AAC over
//!    WebRTC, so that would be a video-only stream.
//! 4. For each step N of `--clients`, this process (pin it to the other
//!    core with taskset) starts N str0m **WHEP viewers**, each on its own
//!    UDP socket, `--ramp` per second, each doing real ICE and DTLS-SRTP
//!    after POSTing its offer to `/whep/NAME`. After all are started and a
//!    warm-up, it measures for `--seconds`: per viewer, RTP packets and
//!    bytes, **lost packets** (sequence gaps per SSRC), **missing frames**
//!    (RTP time steps larger than one frame: a frame the SFU never sent),
//!    and the CPU of the origin (`/proc/PID/stat`) and of this generator
//!    (`/proc/self/stat`, the publisher included).
//!
//! Viewers count from the RTP header, in the clear under SRTP. With
//! `--decrypt full` every packet also goes through str0m (decryption,
//! depacketization, RTCP receiver reports), as a real viewer; with
//! `--decrypt control-only` (the default) media packets are counted but not
//! decrypted, which lets one generator core follow about as many viewers
//! as the origin's core serves (the origin's work is the same either way:
//! it does not know).
//!
//! A step passes when every viewer connected, none lost a packet or a
//! frame, and each received at least 90 % of the source's rate. When the
//! generator is above 80 % of its core, the step is marked GENERATOR-BOUND:
//! its figure is a lower bound of the origin's.
//!
//! **Run** (release build of `livestack` and this crate; `ulimit -n 20000`):
//!
//! ```sh
//! taskset -c 0 target/release/whep-load --clients 250,500,1000,1500,2000 --runs 3
//! ```

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use livestack_bench::{
    command_line,
    process::{OriginProcess, OriginSpec, cpu_time},
    stats::median,
    webrtc::{self, Decrypt, Source, SourceSpec, ViewerCounters},
};
use serde_json::json;
use tokio::sync::watch;

/// WHEP viewers per origin core.
#[derive(Debug, Parser)]
struct Args {
    /// Viewer counts to try, in order.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,1500,2000")]
    clients: Vec<usize>,
    /// Repetitions of the whole sweep (medians are over them).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measurement window per step, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up after the last viewer started, seconds.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Viewers started per second.
    #[arg(long, default_value_t = 200)]
    ramp: u64,
    /// CPU the origin is pinned to.
    #[arg(long, default_value_t = 1)]
    origin_cpu: usize,
    /// Niceness of the origin and of this process (e.g. -10, needs root),
    /// so that other work on a shared machine does not take their cores.
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
    /// How viewers treat media packets.
    #[arg(long, value_enum, default_value_t = Mode::ControlOnly)]
    decrypt: Mode,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Decrypt and depacketize every packet (a real viewer's cost).
    Full,
    /// Count media packets from their clear RTP header only.
    ControlOnly,
}

/// Goal: viewers per core.
const GOAL: usize = 1000;

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counters of every viewer at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Snap {
    packets: u64,
    bytes: u64,
    lost: u64,
    video: u64,
    video_missing: u64,
    audio: u64,
    audio_missing: u64,
}

fn snap(c: &ViewerCounters) -> Snap {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Snap {
        packets: l(&c.packets),
        bytes: l(&c.bytes),
        lost: l(&c.seq_lost),
        video: l(&c.video_frames),
        video_missing: l(&c.video_missing),
        audio: l(&c.audio_frames),
        audio_missing: l(&c.audio_missing),
    }
}

/// One step's figures.
#[derive(Debug, Clone)]
struct Step {
    connected: usize,
    delivered_bps: f64,
    lost: u64,
    missing_frames: u64,
    missing_audio: u64,
    video_frames: u64,
    /// UDP datagrams the kernel dropped for a full receive buffer, any
    /// socket of the machine (`RcvbufErrors` in `/proc/net/snmp`).
    rcvbuf_errors: u64,
    slow: usize,
    failed: usize,
    origin_cpu: f64,
    generator_cpu: f64,
    ok: bool,
}

/// Starts the WHIP publisher on its own thread (its own runtime): it runs
/// until `stop`.
fn start_publisher(
    http: std::net::SocketAddr,
    source: Arc<Source>,
    stop: watch::Receiver<bool>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(webrtc::publish(
            http,
            "load",
            source,
            Arc::new(Mutex::new(Vec::new())),
            stop,
        ))
    })
}

async fn step(args: &Args, source: &Arc<Source>, n: usize) -> Result<Step> {
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
    let publisher = start_publisher(http, source.clone(), stop.clone());
    // Live once the publisher's first keyframe went through.
    livestack_bench::http1::wait_for_200(
        http,
        "/live/load/index.m3u8",
        "the WHIP stream",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || Ok(()),
    )
    .await?;
    let mode = match args.decrypt {
        Mode::Full => Decrypt::Full,
        Mode::ControlOnly => Decrypt::ControlOnly,
    };
    let counters: Vec<Arc<ViewerCounters>> = (0..n).map(|_| Arc::default()).collect();
    let failures = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let mut tasks = Vec::with_capacity(n);
    let started = Instant::now();
    for (i, c) in counters.iter().enumerate() {
        let due = started + Duration::from_micros(i as u64 * 1_000_000 / args.ramp);
        tokio::time::sleep_until(due.into()).await;
        let (c, failures, stop) = (c.clone(), failures.clone(), stop.clone());
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = webrtc::view(http, "load", mode, c, |_| {}, stop).await {
                let mut e = e.to_string();
                e.truncate(120);
                *failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(e)
                    .or_default() += 1;
            }
        })));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let pid = origin.child.pid().to_string();
    let (o0, g0, t0) = (cpu_time(&pid)?, cpu_time("self")?, Instant::now());
    let r0 = rcvbuf_errors();
    let s0: Vec<Snap> = counters.iter().map(|c| snap(c)).collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let s1: Vec<Snap> = counters.iter().map(|c| snap(c)).collect();
    let (o1, g1, elapsed) = (cpu_time(&pid)?, cpu_time("self")?, t0.elapsed());
    let rcvbuf = rcvbuf_errors().saturating_sub(r0);
    let secs = elapsed.as_secs_f64();
    let connected = counters
        .iter()
        .filter(|c| c.connected.load(Ordering::Relaxed))
        .count();
    let mut delivered = 0.0;
    let (mut lost, mut missing, mut video, mut slow, mut missing_audio) = (0, 0, 0, 0, 0);
    for (a, b) in s0.iter().zip(&s1) {
        let rate = (b.bytes - a.bytes) as f64 * 8.0 / secs;
        delivered += rate;
        if rate < 0.9 * source.bps {
            slow += 1;
        }
        lost += b.lost - a.lost;
        missing += (b.video_missing - a.video_missing) + (b.audio_missing - a.audio_missing);
        video += b.video - a.video;
        missing_audio += b.audio_missing - a.audio_missing;
        let _ = (b.packets, b.audio);
    }
    let failed: usize = failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .sum();
    let fail_text = format!(
        "{:?}",
        failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    );
    drop(tasks);
    let _ = stop_tx.send(true);
    let _ = tokio::task::spawn_blocking(move || publisher.join()).await;
    drop(origin);
    let origin_cpu = (o1 - o0).as_secs_f64() / secs;
    let generator_cpu = (g1 - g0).as_secs_f64() / secs;
    let ok = connected == n && lost == 0 && missing == 0 && slow == 0 && failed == 0;
    if failed > 0 {
        println!("  failures: {fail_text}");
    }
    Ok(Step {
        connected,
        delivered_bps: delivered,
        lost,
        missing_frames: missing,
        missing_audio,
        video_frames: video,
        rcvbuf_errors: rcvbuf,
        slow,
        failed,
        origin_cpu,
        generator_cpu,
        ok,
    })
}

/// The machine's count of UDP datagrams dropped for a full receive
/// buffer (0 when unreadable).
fn rcvbuf_errors() -> u64 {
    // Unreadable (not Linux): no count, and the column says 0.
    let Ok(text) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.nice {
        livestack_bench::process::renice_self(n)?;
    }
    let source = Arc::new(
        webrtc::source(&SourceSpec {
            width: 640,
            height: 360,
            seconds: 30,
            video_kbps: 930,
            audio_kbps: 64,
            gop_secs: 2,
        })
        .context("the source")?,
    );
    println!(
        "whep-load: WHEP viewers of one {:.2} Mbit/s H.264 + Opus stream (WHIP publisher) on one origin core, no loss (goal >= {GOAL})",
        source.bps / 1e6
    );
    println!("command: {}", command_line());
    let mut all: Vec<Vec<Step>> = vec![Vec::new(); args.clients.len()];
    for run in 1..=args.runs {
        for (k, &n) in args.clients.iter().enumerate() {
            let s = step(&args, &source, n).await?;
            let bound = if s.generator_cpu > 0.8 {
                " GENERATOR-BOUND"
            } else {
                ""
            };
            println!(
                "run {run} clients={n}: connected {}, delivered {:.1} Mbit/s, video frames {}, lost packets {}, missing frames {} (audio {}), kernel receive-buffer drops {}, below 90% rate {}, failed {}; origin CPU {:.1} % ({:.1} µs per viewer-second), generator CPU {:.1} %{bound} -> {}",
                s.connected,
                s.delivered_bps / 1e6,
                s.video_frames,
                s.lost,
                s.missing_frames,
                s.missing_audio,
                s.rcvbuf_errors,
                s.slow,
                s.failed,
                s.origin_cpu * 100.0,
                s.origin_cpu * 1e6 / n as f64,
                s.generator_cpu * 100.0,
                if s.ok { "ok" } else { "FAIL" }
            );
            all[k].push(s);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let mut best = 0;
    let mut steps = Vec::new();
    for (k, &n) in args.clients.iter().enumerate() {
        let runs = &all[k];
        let med = |f: fn(&Step) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let ok_runs = runs.iter().filter(|s| s.ok).count();
        let passed = ok_runs == runs.len();
        if passed {
            best = best.max(n);
        }
        println!(
            "clients={n} median of {} runs: connected {:.0}, delivered {:.1} Mbit/s, lost {:.0}, missing frames {:.0}, origin CPU {:.1} %, generator CPU {:.1} %; ok in {ok_runs}/{}",
            runs.len(),
            med(|s| s.connected as f64),
            med(|s| s.delivered_bps) / 1e6,
            med(|s| s.lost as f64),
            med(|s| s.missing_frames as f64),
            med(|s| s.origin_cpu) * 100.0,
            med(|s| s.generator_cpu) * 100.0,
            runs.len(),
        );
        steps.push(json!({
            "clients": n,
            "connected": med(|s| s.connected as f64),
            "delivered_bps": med(|s| s.delivered_bps),
            "lost": med(|s| s.lost as f64),
            "missing_frames": med(|s| s.missing_frames as f64),
            "origin_cpu": med(|s| s.origin_cpu),
            "generator_cpu": med(|s| s.generator_cpu),
            "ok_runs": ok_runs,
            "runs": runs.iter().map(|s| json!({
                "connected": s.connected, "delivered_bps": s.delivered_bps, "lost": s.lost,
                "missing_frames": s.missing_frames, "missing_audio": s.missing_audio,
                "rcvbuf_errors": s.rcvbuf_errors, "video_frames": s.video_frames, "slow": s.slow,
                "failed": s.failed, "origin_cpu": s.origin_cpu, "generator_cpu": s.generator_cpu, "ok": s.ok,
            })).collect::<Vec<_>>(),
        }));
    }
    println!(
        "summary: largest viewer count with no loss in every run: {best} (goal >= {GOAL}: {}, {:.2}x)",
        if best >= GOAL { "MET" } else { "NOT MET" },
        best as f64 / GOAL as f64
    );
    println!(
        "{}",
        json!({"bench": "whep-load", "command": command_line(), "source_bps": source.bps,
               "decrypt": format!("{:?}", args.decrypt), "best": best, "goal": GOAL, "steps": steps})
    );
    Ok(())
}
