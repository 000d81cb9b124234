//! `livestack`: one binary, one subcommand per role.
//!
//! - `livestack origin`: SRT ingest → LL-HLS/CMAF over HTTP/1.1 and HTTP/2.
//! - `livestack edge`: the edge PoP (WASM components, LL-HLS cache) in
//!   front of an origin.
//! - `livestack token mint|verify`: operator tools for viewer tokens, with
//!   the edge's key configuration.
//! - `livestack demo`: origin and edge with embedded defaults and a built-in
//!   live source (a running clock and a beep), printing the URLs to open.

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
    /// Run the edge PoP in front of an origin.
    Edge(EdgeArgs),
    /// Mint or verify viewer tokens (CTA-5007 CAT or JWT).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run origin and edge with a built-in live source and print the URLs
    /// to open.
    Demo(DemoArgs),
}

/// The edge's TOML file (`--config`), every key optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EdgeFile {
    /// HTTP listener.
    http: Option<SocketAddr>,
    /// Origin base URL.
    origin: Option<String>,
    /// Replacement components directory.
    modules: Option<PathBuf>,
    /// Token keys, `kid:ALG:base64url,...` (livestack-tokens format).
    token_keys: Option<String>,
    /// Public base URL of the edge.
    public_url: Option<String>,
}

impl EdgeFile {
    fn load(path: Option<&std::path::Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Token key configuration shared by `edge` and `token`.
#[derive(Debug, Args)]
struct KeyArgs {
    /// TOML file with `token_keys` (and the edge's other keys).
    #[arg(long, env = "LIVESTACK_EDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Token keys: `kid:ALG:base64url(secret)` entries, comma-separated
    /// (ALG HS256, ES256 or EdDSA); the first key of an algorithm signs.
    #[arg(long, env = "LIVESTACK_TOKEN_KEYS", hide_env_values = true)]
    token_keys: Option<String>,
}

impl KeyArgs {
    fn resolve(&self) -> Result<(EdgeFile, String)> {
        let file = EdgeFile::load(self.config.as_deref())?;
        let keys = self
            .token_keys
            .clone()
            .or_else(|| file.token_keys.clone())
            .context(
                "no token keys: pass --token-keys, LIVESTACK_TOKEN_KEYS or token_keys in --config",
            )?;
        Ok((file, keys))
    }
}

#[derive(Debug, Args)]
struct EdgeArgs {
    /// HTTP listener address [default: 127.0.0.1:8081].
    #[arg(long, env = "LIVESTACK_EDGE_HTTP")]
    http: Option<SocketAddr>,
    /// Origin base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "LIVESTACK_ORIGIN")]
    origin: Option<String>,
    /// Directory of replacement components (`tokens.wasm`, `manifest.wasm`,
    /// `routing.wasm`, `signaling.wasm`); embedded defaults otherwise.
    /// SIGHUP reloads it without dropping requests.
    #[arg(long, env = "LIVESTACK_MODULES")]
    modules: Option<PathBuf>,
    /// Public base URL of this edge (for token URI checks).
    #[arg(long, env = "LIVESTACK_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(flatten)]
    keys: KeyArgs,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a token for a stream and print it on stdout.
    Mint {
        /// The broadcast NAME (of live/NAME).
        #[arg(long)]
        stream: String,
        /// Lifetime, e.g. 60s or 2h.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Token format.
        #[arg(long, value_enum, default_value_t = Format::Cat)]
        format: Format,
        /// What the token grants.
        #[arg(long, value_enum, default_value_t = AccessArg::Play)]
        access: AccessArg,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Verify a token and print its claims; exits non-zero if refused.
    Verify {
        /// The token.
        token: String,
        /// The request URL to check it against (CAT `catu`), e.g.
        /// `https://edge.example/live/cam1/index.m3u8`.
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// CTA-5007 Common Access Token (COSE_Mac0, HS256).
    Cat,
    /// JWT (ES256 or EdDSA, as the keys allow; HS256 otherwise).
    Jwt,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AccessArg {
    /// Watch (LL-HLS, WHEP).
    Play,
    /// Publish (WHIP).
    Publish,
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
    /// The demo edge's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    edge_http: SocketAddr,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_id() -> Result<Vec<u8>> {
    let mut id = vec![0u8; 16];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(id)
}

fn mint(
    keys: &str,
    stream: &str,
    ttl: Duration,
    format: Format,
    access: AccessArg,
) -> Result<String> {
    use livestack_tokens::{Access, KeySet, MintRequest};
    let keys: KeySet = keys.parse().context("invalid token keys")?;
    let access = match access {
        AccessArg::Play => Access::Play,
        AccessArg::Publish => Access::Publish,
    };
    let req = MintRequest::for_stream(stream, access, now_unix(), ttl.as_secs(), random_id()?)
        .context("invalid mint request")?;
    Ok(match format {
        Format::Cat => livestack_tokens::mint_cat(&req, &keys)?,
        Format::Jwt => livestack_tokens::mint_jwt(&req.without_cat_claims(), &keys)?,
    })
}

async fn start_edge(
    http: SocketAddr,
    origin: &str,
    modules: Option<PathBuf>,
    public_url: Option<String>,
    token_keys: String,
) -> Result<livestack_edge_server::Edge> {
    let origin: livestack_edge_server::OriginUri = origin
        .parse()
        .with_context(|| format!("invalid origin URL {origin:?}"))?;
    let config = livestack_edge_server::EdgeConfig {
        http,
        origin,
        modules,
        token_keys,
        public_url,
        limits: livestack_edge::ComponentLimits::default(),
        registry: Arc::new(livestack_edge::StaticRegistry::default()),
    };
    livestack_edge_server::Edge::start(config)
        .await
        .context("starting the edge")
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
        Command::Edge(args) => {
            let (file, keys) = args.keys.resolve()?;
            let http = args
                .http
                .or(file.http)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081)));
            let origin = args
                .origin
                .or(file.origin)
                .context("no origin: pass --origin URL")?;
            let modules = args.modules.or(file.modules);
            let edge = start_edge(
                http,
                &origin,
                modules.clone(),
                args.public_url.or(file.public_url),
                keys,
            )
            .await?;
            println!("HTTP listening on http://{}", edge.http_addr);
            // SIGHUP reloads the modules directory; calls in flight finish on
            // the old components, new ones use the new set.
            if let Some(dir) = modules {
                let components = Arc::clone(&edge.components);
                let mut hup =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                        .context("installing the SIGHUP handler")?;
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        match components.reload(&dir) {
                            Ok(()) => {
                                tracing::info!(dir = %dir.display(), "edge components reloaded")
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "reload failed; the previous components stay in service")
                            }
                        }
                    }
                });
            }
            tokio::select! {
                _ = edge.run() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::Token(TokenCommand::Mint {
            stream,
            ttl,
            format,
            access,
            keys,
        }) => {
            let (_, keys) = keys.resolve()?;
            println!("{}", mint(&keys, &stream, ttl, format, access)?);
        }
        Command::Token(TokenCommand::Verify { token, url, keys }) => {
            let (_, keys) = keys.resolve()?;
            let keys: livestack_tokens::KeySet = keys.parse().context("invalid token keys")?;
            let mut opts = livestack_tokens::VerifyOptions::new(now_unix());
            if let Some(u) = &url {
                opts.url = Some(
                    livestack_tokens::RequestUrl::parse(u)
                        .map_err(|e| anyhow::anyhow!("invalid --url: {e}"))?,
                );
            }
            match livestack_tokens::verify(&token, &keys, &opts) {
                Ok(v) => println!("valid {:?} token (kid {}): {:#?}", v.kind, v.kid, v.claims),
                Err(e) => bail!("token refused: {e}"),
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
            // The demo edge gets a fresh HS256 key; viewers through it need
            // a token minted with that key.
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret)
                .map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
            use base64::Engine as _;
            let keys = format!(
                "demo:HS256:{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
            );
            let edge = start_edge(
                args.edge_http,
                &format!("http://{http}"),
                None,
                None,
                keys.clone(),
            )
            .await?;
            let token = mint(
                &keys,
                &name,
                Duration::from_secs(24 * 3600),
                Format::Cat,
                AccessArg::Play,
            )?;
            let edge_addr = edge.http_addr;
            origin.spawn(async move { edge.run().await });
            println!("HTTP (edge) listening on http://{edge_addr}");
            println!();
            println!("livestack demo is live. Open in a browser:");
            println!("  player:   http://{http}/?stream={name}");
            println!("  playlist: http://{http}/live/{name}/index.m3u8");
            println!("  through the edge, with a viewer token (CTA-5007 CAT, valid 24 h):");
            println!("  player:   http://{edge_addr}/?stream={name}&token={token}");
            println!("  playlist: http://{edge_addr}/live/{name}/index.m3u8?token={token}");
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
