//! # control-plane: cost of publish and play authorization
//!
//! **What it measures.** The control-plane cost a node pays to admit a
//! publisher or a viewer, through the node's caching client
//! (`livestack_control::ControlClient`), with the in-memory store and with
//! Redis on loopback; and the number of Redis round trips per viewer join.
//! **Goal: zero Redis round trips per viewer join on the hot path once the
//! stream's keys are cached.**
//!
//! **How.**
//! 1. A real `redis-server` is started on a free loopback port
//!    (`livestack_control::testing::RedisServer`, append-only file with
//!    `appendfsync everysec` as `deploy/` recommends), and
//!    the same keys (one per stream for 100 streams, plus a `*` key) are
//!    written to it and to a `MemoryControlPlane`.
//! 2. For each backend, `--iterations` times each, timed one by one with
//!    `Instant` (µs):
//!    - *publish*: `authorize(Publish, stream, key)`: always a fresh read of
//!      the stream's keys (a revoked key must not publish again);
//!    - *play, cached*: `authorize(Play, stream, key)` with the keys cached
//!      (the viewer-join hot path);
//!    - *play, cache miss*: the same with a zero cache TTL (the first viewer
//!      of a stream on a node, or one after the TTL);
//!    - *claim + release*: the atomic placement of a new publisher and its
//!      release (two operations).
//! 3. Round trips: the client's operation counter, and Redis's own count of
//!    commands executed (`INFO commandstats`, summed) before and after the
//!    cached play joins.
//!
//! The run repeats `--runs` times; the report gives each run and the median
//! across runs of each percentile.
//!
//! **Run:** `cargo run --release -p livestack-bench --bin control-plane`

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Parser;
use livestack_bench::{
    command_line,
    stats::{Summary, median, show},
};
use livestack_control::{
    Action, ClientOptions, ControlClient, ControlPlane, MemoryControlPlane, Placement,
    RedisControlPlane, RedisOptions, RedisTarget, Scope, StreamKey, now_millis,
    testing::RedisServer,
};

#[derive(Debug, Parser)]
#[command(about = "Control-plane cost per publish/play authorization")]
struct Args {
    /// Operations per measurement.
    #[arg(long, default_value_t = 10_000)]
    iterations: usize,
    /// Repetitions (the report gives medians across them).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const STREAMS: usize = 100;

fn keys() -> Vec<StreamKey> {
    let mut keys: Vec<StreamKey> = (0..STREAMS)
        .map(|i| StreamKey {
            id: format!("k{i}"),
            stream: format!("s{i}"),
            secret: format!("secret-of-stream-{i}"),
            scope: Scope::Both,
            expires_at: None,
            created_at: now_millis(),
        })
        .collect();
    keys.push(StreamKey {
        id: "all".into(),
        stream: "*".into(),
        secret: "the-master-key-0001".into(),
        scope: Scope::Publish,
        expires_at: None,
        created_at: now_millis(),
    });
    keys
}

/// Commands Redis has executed so far (sum of `INFO commandstats` calls).
fn redis_commands(server: &RedisServer) -> u64 {
    // A failed INFO must not read as "0 commands": that is the figure this
    // benchmark proves.
    let info: String = server
        .query(redis::cmd("INFO").arg("commandstats"))
        .expect("redis-server answers INFO commandstats");
    info.lines()
        .filter_map(|l| l.split("calls=").nth(1))
        .filter_map(|v| v.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[derive(Debug, Default, Clone)]
struct Run {
    publish: Option<Summary>,
    play_cached: Option<Summary>,
    play_miss: Option<Summary>,
    claim_release: Option<Summary>,
    trips_per_join: f64,
    redis_commands_per_join: Option<f64>,
}

async fn measure(
    store: Arc<dyn ControlPlane>,
    n: usize,
    redis: Option<&RedisServer>,
) -> Result<Run> {
    let cached = ControlClient::new(store.clone(), ClientOptions::default());
    let uncached = ControlClient::new(
        store.clone(),
        ClientOptions {
            cache_ttl: Duration::ZERO,
            ..ClientOptions::default()
        },
    );
    let stream = |i: usize| format!("s{}", i % STREAMS);
    let secret = |i: usize| format!("secret-of-stream-{}", i % STREAMS);
    let us = |v: &mut Vec<f64>, t: Instant| v.push(t.elapsed().as_secs_f64() * 1e6);

    let mut publish = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        cached
            .authorize(Action::Publish, &stream(i), Some(&secret(i)), false)
            .await
            .context("publish authorization")?;
        us(&mut publish, t);
    }
    // Every stream's keys are cached now (the publishes read them).
    let trips_before = cached.round_trips();
    let redis_before = redis.map(redis_commands);
    let mut play_cached = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        cached
            .authorize(Action::Play, &stream(i), Some(&secret(i)), false)
            .await
            .context("play authorization")?;
        us(&mut play_cached, t);
    }
    let trips_per_join = (cached.round_trips() - trips_before) as f64 / n as f64;
    let redis_commands_per_join = match (redis, redis_before) {
        // The INFO call itself is one command.
        (Some(r), Some(b)) => Some((redis_commands(r) - b).saturating_sub(1) as f64 / n as f64),
        _ => None,
    };
    let mut play_miss = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        uncached
            .authorize(Action::Play, &stream(i), Some(&secret(i)), false)
            .await
            .context("play authorization (miss)")?;
        us(&mut play_miss, t);
    }
    let mut claim_release = Vec::with_capacity(n);
    for i in 0..n {
        let p = Placement {
            stream: format!("bench-{i}"),
            node_id: "bench-node".into(),
            session_id: format!("bench-session-{i}"),
            since: now_millis(),
            bitrate_bps: 0,
            viewers: 0,
        };
        let t = Instant::now();
        store
            .claim_stream(&p, Duration::from_secs(10))
            .await
            .context("claim")?;
        store
            .release_stream(&p.stream, &p.session_id)
            .await
            .context("release")?;
        us(&mut claim_release, t);
    }
    Ok(Run {
        publish: Summary::of(&publish),
        play_cached: Summary::of(&play_cached),
        play_miss: Summary::of(&play_miss),
        claim_release: Summary::of(&claim_release),
        trips_per_join,
        redis_commands_per_join,
    })
}

fn report(name: &str, runs: &[Run]) {
    println!("== {name} (µs; medians across {} runs) ==", runs.len());
    let med = |f: &dyn Fn(&Summary) -> f64, pick: &dyn Fn(&Run) -> Option<Summary>| {
        median(
            &runs
                .iter()
                .filter_map(pick)
                .map(|s| f(&s))
                .collect::<Vec<_>>(),
        )
    };
    for (label, pick) in [
        (
            "publish authorization",
            &(|r: &Run| r.publish) as &dyn Fn(&Run) -> Option<Summary>,
        ),
        ("play authorization, cached (viewer join)", &|r: &Run| {
            r.play_cached
        }),
        ("play authorization, cache miss", &|r: &Run| r.play_miss),
        ("placement claim + release", &|r: &Run| r.claim_release),
    ] {
        for (i, r) in runs.iter().enumerate() {
            println!("  run {i}: {label}: {}", show(pick(r).as_ref()));
        }
        println!(
            "  {label}: p50 {:.1} µs, p99 {:.1} µs",
            med(&|s| s.p50, pick),
            med(&|s| s.p99, pick)
        );
    }
    println!(
        "  control-plane operations per viewer join (cached): {:.4}",
        median(&runs.iter().map(|r| r.trips_per_join).collect::<Vec<_>>())
    );
    let redis: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.redis_commands_per_join)
        .collect();
    if !redis.is_empty() {
        println!(
            "  Redis commands executed per viewer join (cached, INFO commandstats): {:.4}",
            median(&redis)
        );
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!("{}", command_line());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Production settings (deploy/README.md): append-only file, fsync once
    // a second.
    let server = RedisServer::start_with(&["appendfsync everysec"]);
    rt.block_on(async {
        let memory = MemoryControlPlane::with_keys(keys());
        let target = RedisTarget::parse(&server.url()).context("redis url")?;
        let redis = RedisControlPlane::connect(target, RedisOptions::default()).await?;
        for k in keys() {
            redis.create_key(&k).await.context("seeding redis")?;
        }
        let mut mem_runs = Vec::new();
        let mut redis_runs = Vec::new();
        for _ in 0..args.runs {
            mem_runs.push(measure(memory.clone(), args.iterations, None).await?);
            redis_runs.push(measure(redis.clone(), args.iterations, Some(&server)).await?);
        }
        report("in-memory", &mem_runs);
        report("Redis on loopback", &redis_runs);
        Ok(())
    })
}
