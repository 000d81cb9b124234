//! # llhls-cpu-per-gbit: origin CPU per delivered Gbit/s of LL-HLS parts,
//! by HTTP version and TLS
//!
//! **What it measures.** The origin's CPU-seconds per delivered Gbit
//! (= cores per Gbit/s) when serving LL-HLS parts over HTTP/2 with TLS
//! (what browsers use), HTTP/1.1 with TLS and cleartext HTTP/1.1, to set
//! against `moq-load`'s figure for Media over QUIC (issue 10: "CPU per
//! delivered Gbit/s over MoQ vs over HTTP/2 LL-HLS, as a ratio").
//!
//! **How.**
//! 1. The same source as `moq-load` (1280x720 30 fps H.264 ≈ 2.4 Mbit/s,
//!    2 s GOP, + AAC), published over SRT in a loop (`-re`).
//! 2. The release origin runs with one runtime thread pinned to
//!    `--origin-cpu` (default 1), with `--https` (self-signed certificate,
//!    ring, ALPN `h2`/`http/1.1`) and 200 ms parts.
//! 3. For each protocol, the newest complete part of the video rendition
//!    is fetched over and over by `h2load` (nghttp2, `apt install
//!    nghttp2-client`), pinned to `--client-cpu` (default 0): `--clients`
//!    connections, `--streams` concurrent requests each (HTTP/2), for
//!    `--seconds`. A part is what an LL-HLS viewer mostly downloads; the
//!    blocking playlist requests are left out, so this is the per-byte cost
//!    of each transport, which is what the ratio is about.
//! 4. The origin's CPU (`/proc/PID/stat`) over the run, divided by the
//!    bytes `h2load` received (its `traffic:` line, headers included).
//!
//! **Run** (release build of `livestack` and this crate):
//!
//! ```sh
//! target/release/llhls-cpu-per-gbit --runs 3
//! ```

use std::{process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Parser;
use livestack_bench::{
    command_line,
    media::{self, EncodeSpec},
    process::{OriginProcess, OriginSpec, cpu_time, publish},
};
use livestack_test_harness::hls::{HttpClient, MediaPlaylist};
use serde_json::json;

/// Origin CPU per delivered Gbit/s over HTTP/2+TLS, HTTP/1.1+TLS and
/// HTTP/1.1.
#[derive(Debug, Parser)]
struct Args {
    /// Connections.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Concurrent requests per HTTP/2 connection.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Runs per protocol (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// CPU the origin is pinned to.
    #[arg(long, default_value_t = 1)]
    origin_cpu: usize,
    /// CPU h2load is pinned to.
    #[arg(long, default_value_t = 0)]
    client_cpu: usize,
}

/// The bytes h2load received: the number in parentheses on its
/// `traffic:` line.
fn traffic_bytes(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("traffic:"))?;
    let open = line.find('(')?;
    let close = line[open..].find(')')? + open;
    line[open + 1..close].trim().parse().ok()
}

/// The URL path of the newest complete part of `video.m3u8`.
async fn newest_part(http: &HttpClient, base: &str) -> Result<String> {
    let text = http.get(&format!("{base}/live/load/video.m3u8")).await.body;
    let playlist = MediaPlaylist::parse(std::str::from_utf8(&text)?);
    let part = playlist
        .segments
        .iter()
        .flat_map(|s| s.parts.iter())
        .next_back()
        .context("no part in the playlist")?;
    Ok(format!("/live/load/{}", part.uri))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if Command::new("h2load").arg("--version").output().is_err() {
        bail!("h2load is needed: apt install nghttp2-client");
    }
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
    let origin = OriginProcess::start(&OriginSpec {
        threads: Some(1),
        cpu: Some(args.origin_cpu),
        part_target: Duration::from_millis(200),
        nice: None,
        webtransport: false,
        https: true,
        webrtc: false,
    })
    .await?;
    let https = origin.https.context("HTTPS listener")?;
    let _ffmpeg = publish(origin.srt, "load", &source, true, None, None)?;
    let http = HttpClient::new();
    let plain = format!("http://{}", origin.http);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while http
        .get(&format!("{plain}/live/load/index.m3u8"))
        .await
        .status
        != 200
    {
        if std::time::Instant::now() > deadline {
            bail!("the stream did not go live");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = origin.child.pid().to_string();
    println!("{}", command_line());
    let protocols: [(&str, &str, &[&str]); 3] = [
        ("http2-tls", "https", &[]),
        ("http1.1-tls", "https", &["--h1"]),
        ("http1.1", "http", &["--h1"]),
    ];
    let mut results = Vec::new();
    for (name, scheme, flags) in protocols {
        let mut per_gbit = Vec::new();
        let mut gbps = Vec::new();
        for run in 0..args.runs {
            let part = newest_part(&http, &plain).await?;
            let host = if scheme == "https" {
                https.to_string()
            } else {
                origin.http.to_string()
            };
            let url = format!("{scheme}://{host}{part}");
            let before = cpu_time(&pid)?;
            let started = std::time::Instant::now();
            let out = Command::new("taskset")
                .args(["-c", &args.client_cpu.to_string(), "h2load"])
                .args(flags)
                .args(["-t", "1", "-c", &args.clients.to_string()])
                .args(["-m", &args.streams.to_string()])
                .args(["-D", &args.seconds.to_string()])
                .arg(&url)
                .output()
                .context("run h2load")?;
            let wall = started.elapsed().as_secs_f64();
            let cpu = (cpu_time(&pid)? - before).as_secs_f64();
            let text = String::from_utf8_lossy(&out.stdout);
            let bytes = traffic_bytes(&text).context("h2load printed no traffic line")?;
            let failed = text
                .lines()
                .find(|l| l.starts_with("requests:"))
                .unwrap_or("requests: (h2load printed no summary)")
                .to_owned();
            let gbit = bytes as f64 * 8.0 / 1e9;
            per_gbit.push(cpu / gbit);
            gbps.push(gbit / wall);
            println!(
                "{name} run {run}: {bytes} bytes in {wall:.1} s = {:.2} Gbit/s, origin {:.1} % of a core, {:.3} cpu-s per Gbit ({failed})",
                gbit / wall,
                cpu / wall * 100.0,
                cpu / gbit
            );
        }
        per_gbit.sort_by(f64::total_cmp);
        gbps.sort_by(f64::total_cmp);
        let median = per_gbit[per_gbit.len() / 2];
        println!(
            "median {name}: {median:.3} cpu-s per Gbit at {:.2} Gbit/s",
            gbps[gbps.len() / 2]
        );
        results.push((name, median));
    }
    println!(
        "{}",
        json!({
            "benchmark": "llhls-cpu-per-gbit",
            "cpu_s_per_gbit": results.iter().map(|(n, v)| (n.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
        })
    );
    Ok(())
}
