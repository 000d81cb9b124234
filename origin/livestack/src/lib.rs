//! `livestack`: one binary, one subcommand per role. [`main`] parses the
//! command line and dispatches; each subcommand lives in its own module.
//!
//! - `livestack origin` (`origin.rs`): SRT ingest → LL-HLS/CMAF over
//!   HTTP/1.1 and HTTP/2.
//! - `livestack edge` (`edge.rs`): the edge PoP (WASM components, LL-HLS
//!   cache) in front of an origin.
//! - `livestack token mint|verify` (`token.rs`): operator tools for viewer
//!   tokens, with the edge's key configuration.
//! - `livestack demo` (`demo.rs`): origin and edge with embedded defaults
//!   and a built-in live source (a running clock and a beep), printing the
//!   URLs to open.
//! - `livestack admin` (`admin_cli.rs`): the admin API from the command
//!   line.
//!
//! It is a library with one public function so that the end-to-end tests
//! (`tests/`, another package) can link the very same command line into
//! the binary they run as separate processes: cargo hands an integration
//! test only the binaries of its own package. `src/main.rs` is the
//! `livestack` binary: a call to [`main`].

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use livestack_origin::config::OriginConfig;

mod admin_cli;
mod control_plane;
mod demo;
mod edge;
mod listener_args;
mod origin;
mod secrets;
mod shutdown;
mod telemetry;
mod token;

use telemetry::LogFormat;

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
    /// Export tracing spans to this OpenTelemetry collector over OTLP/HTTP
    /// (protobuf, `POST <URL>/v1/traces`), e.g. `http://collector:4318`;
    /// off unless given. `OTEL_SERVICE_NAME` names the service (default
    /// `livestack-<subcommand>`); the other standard `OTEL_*` variables
    /// (headers, resource attributes, sampler, batching) apply.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    otlp_endpoint: Option<String>,
    /// Log whole client IP addresses. Off by default: logs show only the
    /// network (`203.0.113.0/24`, an IPv6 `/48`), since an IP address is
    /// personal data in many jurisdictions.
    #[arg(long, global = true, env = "LIVESTACK_LOG_CLIENT_ADDRESSES")]
    log_client_addresses: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the origin server.
    Origin(origin::OriginArgs),
    /// Run the edge PoP in front of an origin.
    Edge(edge::EdgeArgs),
    /// Mint or verify viewer tokens (CTA-5007 CAT or JWT).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Run origin and edge with a built-in live source and print the URLs
    /// to open.
    Demo(demo::DemoArgs),
    /// Operate a deployment through an origin's admin API (JSON on stdout).
    Admin(admin_cli::AdminArgs),
}

impl Command {
    /// The subcommand's name (`livestack-<name>` is the default OpenTelemetry
    /// service name).
    fn name(&self) -> &'static str {
        match self {
            Command::Origin(_) => "origin",
            Command::Edge(_) => "edge",
            Command::Token(_) => "token",
            Command::Demo(_) => "demo",
            Command::Admin(_) => "admin",
        }
    }
}

/// The `livestack` command: parses the process's command line, starts
/// logging (and span export) and a tokio runtime, runs the subcommand and
/// flushes the exported spans.
///
/// # Errors
/// A configuration that does not resolve, or the subcommand's error (its
/// chain is what the binary prints).
pub fn main() -> Result<()> {
    let mut cli = Cli::parse();
    // The origin's configuration is resolved before logging starts: its
    // node id names this process in exported traces.
    let origin_config = match &mut cli.command {
        Command::Origin(args) => Some(std::mem::take(args).into_config()?),
        Command::Demo(args) => {
            let mut c = std::mem::take(&mut args.origin).into_config()?;
            // The demo offers Media over QUIC too, unless told where.
            c.webtransport.get_or_insert(demo::DEFAULT_WEBTRANSPORT);
            // And WebRTC (WHIP/WHEP).
            c.webrtc.get_or_insert(demo::DEFAULT_WEBRTC);
            Some(c)
        }
        _ => None,
    };
    let otlp = cli
        .otlp_endpoint
        .as_ref()
        .map(|endpoint| telemetry::OtlpSettings {
            endpoint: endpoint.clone(),
            service_name: std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("livestack-{}", cli.command.name())),
            instance_id: origin_config
                .as_ref()
                .map(|c| c.cluster.node_id.clone())
                .unwrap_or_else(telemetry::hostname),
        });
    let telemetry = telemetry::init(cli.log_format, otlp.as_ref())?;
    livestack_listener::set_log_client_addresses(cli.log_client_addresses);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = cli.threads {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime.build().context("starting the runtime")?;
    let result = runtime.block_on(run(cli.command, origin_config));
    // Dropping the runtime ends every task, and so closes every span still
    // open (a publisher still connected); then the last spans are exported.
    drop(runtime);
    telemetry.shutdown();
    result
}

/// The configuration `main` resolved for `origin` and `demo`.
fn resolved(config: Option<OriginConfig>) -> Result<OriginConfig> {
    config.context("internal error: the origin configuration was not resolved")
}

async fn run(command: Command, origin_config: Option<OriginConfig>) -> Result<()> {
    match command {
        Command::Origin(_) => origin::run(&resolved(origin_config)?).await,
        Command::Edge(args) => edge::run(args).await,
        Command::Token(command) => token::run(command),
        Command::Demo(args) => demo::run(args, &resolved(origin_config)?).await,
        Command::Admin(args) => admin_cli::run(args).await,
    }
}
