//! `livestack`: one binary, one subcommand per role.
//!
//! - `livestack origin`: SRT ingest → LL-HLS/CMAF over HTTP/1.1 and HTTP/2.
//! - `livestack demo`: the origin with embedded defaults and a built-in live
//!   source (a running clock and a beep), printing the URLs to open.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use livestack_origin::{
    Origin,
    config::{OriginConfig, StreamKeyConfig},
    control::MemoryControlPlane,
};

/// A live-streaming stack: SRT in, Low-Latency HLS out.
#[derive(Debug, Parser)]
#[command(name = "livestack", version, about)]
struct Cli {
    /// Runtime worker threads (default: one per core). `--threads 1` pins
    /// the whole server to one core, as the benchmarks do.
    #[arg(long, global = true, env = "LIVESTACK_THREADS")]
    threads: Option<usize>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LIVESTACK_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the origin server.
    Origin(OriginArgs),
    /// Run the origin with a built-in live source and print the URLs to open.
    Demo(DemoArgs),
}

/// Flags shared by `origin` and `demo`; each overrides the TOML key of the
/// same name, and is itself overridden by nothing.
#[derive(Debug, Args)]
struct OriginArgs {
    /// TOML configuration file (every key documented in the README).
    #[arg(long, env = "LIVESTACK_CONFIG")]
    config: Option<PathBuf>,
    /// SRT listener address (UDP) [default: 127.0.0.1:9000].
    #[arg(long, env = "LIVESTACK_SRT")]
    srt: Option<SocketAddr>,
    /// HTTP listener address (TCP) [default: 127.0.0.1:8080].
    #[arg(long, env = "LIVESTACK_HTTP")]
    http: Option<SocketAddr>,
    /// HTTPS listener address (TCP); off unless given.
    #[arg(long, env = "LIVESTACK_HTTPS")]
    https: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS (self-signed when omitted).
    #[arg(long, env = "LIVESTACK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "LIVESTACK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// SRT receiver latency, e.g. 120ms.
    #[arg(long, env = "LIVESTACK_SRT_LATENCY", value_parser = humantime::parse_duration)]
    srt_latency: Option<Duration>,
    /// LL-HLS part target, e.g. 200ms.
    #[arg(long, env = "LIVESTACK_PART_TARGET", value_parser = humantime::parse_duration)]
    part_target: Option<Duration>,
    /// LL-HLS segment target, e.g. 2s.
    #[arg(long, env = "LIVESTACK_SEGMENT_TARGET", value_parser = humantime::parse_duration)]
    segment_target: Option<Duration>,
    /// Segments in the live window.
    #[arg(long, env = "LIVESTACK_WINDOW_SEGMENTS")]
    window_segments: Option<usize>,
    /// A stream key, NAME=KEY (NAME `*` for every stream); repeatable. Adds
    /// to the keys of the config file.
    #[arg(long = "stream-key", value_name = "NAME=KEY")]
    stream_keys: Vec<String>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    origin: OriginArgs,
    /// Name of the built-in broadcast.
    #[arg(long, default_value = "demo")]
    stream: String,
}

impl OriginArgs {
    fn into_config(self) -> Result<OriginConfig> {
        let mut c = OriginConfig::load(self.config.as_deref())?;
        if let Some(v) = self.srt {
            c.srt = v;
        }
        if let Some(v) = self.http {
            c.http = v;
        }
        if let Some(v) = self.https {
            c.https = Some(v);
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert;
            c.tls_key = self.tls_key;
        }
        if let Some(v) = self.srt_latency {
            c.srt_options.latency = v;
        }
        if let Some(v) = self.part_target {
            c.hls.part_target = v;
        }
        if let Some(v) = self.segment_target {
            c.hls.segment_target = v;
        }
        if let Some(v) = self.window_segments {
            c.hls.window_segments = v;
        }
        for kv in self.stream_keys {
            let Some((stream, key)) = kv.split_once('=') else {
                bail!("--stream-key takes NAME=KEY, got {kv:?}");
            };
            c.auth.keys.push(StreamKeyConfig {
                stream: stream.to_owned(),
                key: key.to_owned(),
            });
        }
        c.validate()?;
        Ok(c)
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIVESTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn start(config: &OriginConfig) -> Result<Origin> {
    let control = MemoryControlPlane::new(config.auth.keys.clone());
    Origin::start(config, control)
        .await
        .context("starting the origin")
}

fn print_endpoints(origin: &Origin) {
    println!("SRT listening on {}", origin.srt_addr);
    println!("HTTP listening on http://{}", origin.http_addr);
    if let Some(a) = origin.https_addr {
        println!("HTTPS listening on https://{a}");
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = cli.threads {
        runtime.worker_threads(n.max(1));
    }
    runtime
        .build()
        .context("starting the runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Origin(args) => {
            let config = args.into_config()?;
            let origin = start(&config).await?;
            print_endpoints(&origin);
            tokio::select! {
                _ = origin.run() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::Demo(args) => {
            let config = args.origin.into_config()?;
            let mut origin = start(&config).await?;
            let name = args.stream;
            origin.spawn(livestack_origin::demo::run(
                Arc::clone(&origin.streams),
                name.clone(),
            ));
            print_endpoints(&origin);
            let http = origin.http_addr;
            let srt = origin.srt_addr;
            println!();
            println!("livestack demo is live. Open in a browser:");
            println!("  player:   http://{http}/?stream={name}");
            println!("  playlist: http://{http}/live/{name}/index.m3u8");
            println!("Publish your own stream over SRT, then pick it in the player:");
            println!(
                "  ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -g 60 -c:a aac -f mpegts 'srt://{srt}?streamid=#!::r=live/mine,m=publish'"
            );
            tokio::select! {
                _ = origin.run() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
    Ok(())
}
