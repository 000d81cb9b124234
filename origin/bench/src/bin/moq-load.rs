//! # moq-load: MoQ subscribers one origin core sustains
//!
//! **What it measures.** How many Media over QUIC subscribers of one
//! ≈ 2.5 Mbit/s stream the origin serves from one core with no dropped
//! group, and the origin's CPU per delivered Gbit/s. **Goal: ≥ 500
//! subscribers.**
//!
//! **How.**
//! 1. ffmpeg encodes a 1280x720 30 fps H.264 (2 s GOP) + AAC source at
//!    ≈ 2.5 Mbit/s in all, and publishes it to the origin over SRT in a
//!    loop (`-re`).
//! 2. The release origin binary runs pinned to `--origin-cpu` (default 1),
//!    one runtime thread, with `--webtransport` on loopback.
//! 3. For each step N of `--clients`, this process (pin it to the other
//!    core with taskset) opens N raw-QUIC moq-net sessions, each subscribing
//!    to the stream's `video` and `audio` tracks; after a warm-up it
//!    measures for `--seconds`: bytes and groups received, **dropped
//!    groups** (gaps in a track's group sequence numbers, per subscriber),
//!    and the CPU of the origin (`/proc/PID/stat`) and of this generator
//!    (`/proc/self/stat`).
//!
//! A step passes when no subscriber lost a group and every subscriber
//! received at least 90 % of the stream's bit rate. When the generator
//! itself is above 80 % of its core, the step is GENERATOR-BOUND: its
//! figure is a lower bound of the origin's.
//!
//! **Run** (release build of `livestack` and this crate):
//!
//! ```sh
//! taskset -c 0 target/release/moq-load --clients 50,100,200,400
//! ```

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Parser;
use livestack_bench::{
    command_line,
    media::{self, EncodeSpec},
    process::{OriginProcess, OriginSpec, cpu_time, publish},
};
use livestack_test_harness::{hls::HttpClient, quic::MoqSubscriber};
use serde_json::json;

/// MoQ subscribers per origin core.
#[derive(Debug, Parser)]
struct Args {
    /// Subscriber counts to try, in order.
    #[arg(long, value_delimiter = ',', default_value = "50,100,200,400")]
    clients: Vec<usize>,
    /// Measurement window per step, seconds (after a 4 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// CPU the origin is pinned to.
    #[arg(long, default_value_t = 1)]
    origin_cpu: usize,
}

/// Goal: subscribers per core.
const GOAL: usize = 500;

/// Per-subscriber counters, shared with its task.
#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    groups: AtomicU64,
    dropped: AtomicU64,
}

/// One subscriber: a raw-QUIC moq-net session reading `video` and `audio`
/// until dropped (it never returns otherwise), counting bytes, groups and
/// gaps in group sequences.
async fn subscriber(
    addr: std::net::SocketAddr,
    hash: String,
    counters: Arc<Counters>,
) -> std::result::Result<(), String> {
    let client = MoqSubscriber::connect(addr, moq_net::ALPNS, &hash).await?;
    let broadcast = client.broadcast("load").await?;
    let mut tracks = Vec::new();
    for name in ["video", "audio"] {
        let mut track = MoqSubscriber::subscribe(&broadcast, name).await?;
        let counters = counters.clone();
        tracks.push(AbortOnDrop(tokio::spawn(async move {
            let mut last: Option<u64> = None;
            while let Ok(Some(mut group)) = track.recv_group().await {
                if let Some(l) = last
                    && group.sequence > l + 1
                {
                    counters
                        .dropped
                        .fetch_add(group.sequence - l - 1, Ordering::Relaxed);
                }
                last = Some(last.map_or(group.sequence, |l| l.max(group.sequence)));
                counters.groups.fetch_add(1, Ordering::Relaxed);
                while let Ok(Some(frame)) = group.read_frame().await {
                    counters
                        .bytes
                        .fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
                }
            }
        })));
    }
    // Until the step drops this task: the session and the track readers
    // live as long as it.
    let _alive = (client, tracks);
    std::future::pending().await
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn snapshot(all: &[Arc<Counters>]) -> Vec<(u64, u64, u64)> {
    all.iter()
        .map(|c| {
            (
                c.bytes.load(Ordering::Relaxed),
                c.groups.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed),
            )
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let spec = EncodeSpec {
        width: 1280,
        height: 720,
        fps: 30,
        seconds: 30,
        video_kbps: 2400,
        audio_kbps: 96,
        gop_secs: 2,
    };
    let source = media::encoded(&spec)?;
    let bps = media::bitrate(&source)?;
    let origin = OriginProcess::start(&OriginSpec {
        threads: Some(1),
        cpu: Some(args.origin_cpu),
        part_target: Duration::from_millis(200),
        nice: None,
        webtransport: true,
        https: false,
        webrtc: false,
    })
    .await?;
    let wt = origin.webtransport.context("MoQ listener")?;
    let _ffmpeg = publish(origin.srt, "load", &source, true, None, None)?;
    let http = HttpClient::new();
    let hash = String::from_utf8(
        http.get(&format!("http://{}/certificate.sha256", origin.http))
            .await
            .body
            .to_vec(),
    )?
    .trim()
    .to_owned();
    let pid = origin.child.pid().to_string();
    println!(
        "moq-load: MoQ subscribers of one {:.2} Mbit/s stream on one origin core (goal >= {GOAL})",
        bps as f64 / 1e6
    );
    println!("command: {}", command_line());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut best = 0;
    let mut steps = Vec::new();
    for &n in &args.clients {
        let counters: Vec<Arc<Counters>> = (0..n).map(|_| Arc::default()).collect();
        let failures = Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
        let tasks: Vec<AbortOnDrop> = counters
            .iter()
            .map(|c| {
                let (c, hash, failures) = (c.clone(), hash.clone(), failures.clone());
                AbortOnDrop(tokio::spawn(async move {
                    if let Err(e) = subscriber(wt, hash, c).await {
                        *failures.lock().expect("lock").entry(e).or_default() += 1;
                    }
                }))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let (o0, g0, t0) = (cpu_time(&pid)?, cpu_time("self")?, Instant::now());
        let s0 = snapshot(&counters);
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        let s1 = snapshot(&counters);
        let (o1, g1, elapsed) = (cpu_time(&pid)?, cpu_time("self")?, t0.elapsed());
        drop(tasks);
        let secs = elapsed.as_secs_f64();
        let rates: Vec<f64> = s0
            .iter()
            .zip(&s1)
            .map(|(a, b)| (b.0 - a.0) as f64 * 8.0 / secs)
            .collect();
        let dropped: u64 = s0.iter().zip(&s1).map(|(a, b)| b.2 - a.2).sum();
        let groups: u64 = s0.iter().zip(&s1).map(|(a, b)| b.1 - a.1).sum();
        let delivered: f64 = rates.iter().sum();
        let slow = rates.iter().filter(|r| **r < 0.9 * bps as f64).count();
        let origin_cpu = (o1 - o0).as_secs_f64() / secs;
        let gen_cpu = (g1 - g0).as_secs_f64() / secs;
        let fails: usize = failures.lock().expect("lock").values().sum();
        let ok = dropped == 0 && slow == 0 && fails == 0;
        if ok {
            best = best.max(n);
        }
        let bound = if gen_cpu > 0.8 {
            " GENERATOR-BOUND"
        } else {
            ""
        };
        println!(
            "clients={n}: delivered {:.1} Mbit/s, groups {groups}, dropped {dropped}, below 90% rate {slow}, failed {fails}; origin CPU {:.1} % ({:.3} cpu-s per Gbit), generator CPU {:.1} %{bound} -> {}",
            delivered / 1e6,
            origin_cpu * 100.0,
            if delivered > 0.0 {
                origin_cpu / (delivered / 1e9)
            } else {
                f64::NAN
            },
            gen_cpu * 100.0,
            if ok { "ok" } else { "FAIL" }
        );
        steps.push(json!({
            "clients": n, "delivered_bps": delivered, "groups": groups, "dropped_groups": dropped,
            "slow": slow, "failed": fails, "origin_cpu": origin_cpu, "generator_cpu": gen_cpu,
            "origin_cpu_s_per_gbit": if delivered > 0.0 { origin_cpu / (delivered / 1e9) } else { f64::NAN },
            "ok": ok,
        }));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "summary: largest subscriber count with no dropped group: {best} (goal >= {GOAL}: {})",
        if best >= GOAL { "MET" } else { "NOT MET" }
    );
    println!(
        "{}",
        json!({"bench": "moq-load", "command": command_line(), "source_bps": bps, "best": best, "goal": GOAL, "steps": steps})
    );
    Ok(())
}
