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
    control::{ControlPlane, MemoryControlPlane},
};

mod admin_cli;
mod telemetry;

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
    #[command(subcommand)]
    command: Command,
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
    /// Operate a deployment through an origin's admin API (JSON on stdout).
    Admin(admin_cli::AdminArgs),
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
    /// The control plane to read the origin registry and stream placement
    /// from (`redis://HOST:PORT[/DB]`, `rediss://...`,
    /// `redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB]`): each stream is
    /// then proxied to the origin node that holds it (nearest healthy
    /// region otherwise), and to --origin only while the registry lists no
    /// node. Without it, every request goes to --origin.
    #[arg(long, env = "LIVESTACK_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// How often the registry snapshot is refreshed from the control plane
    /// (the edge routes with the last snapshot while it is unreachable).
    #[arg(long, env = "LIVESTACK_REGISTRY_REFRESH", value_parser = humantime::parse_duration, default_value = "500ms")]
    registry_refresh: Duration,
    /// Request headers with the client's ISO 3166-1 alpha-2 country, tried
    /// in order, comma-separated [default:
    /// x-client-country,cf-ipcountry,cloudfront-viewer-country].
    #[arg(long, env = "LIVESTACK_GEO_COUNTRY_HEADERS", value_delimiter = ',')]
    geo_country_headers: Vec<String>,
    /// Request headers with the client's location as LAT,LON in degrees,
    /// tried in order, comma-separated [default: x-client-location]
    /// (CloudFront-Viewer-Latitude/-Longitude are read as well).
    #[arg(long, env = "LIVESTACK_GEO_LOCATION_HEADERS", value_delimiter = ',')]
    geo_location_headers: Vec<String>,
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
#[derive(Debug, Default, Args)]
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
    /// This node's unique id (default `origin-<hostname>`).
    #[arg(long, env = "LIVESTACK_NODE_ID")]
    node_id: Option<String>,
    /// This node's region [default: local].
    #[arg(long, env = "LIVESTACK_REGION")]
    region: Option<String>,
    /// The region's location, LAT,LON in degrees, for geo routing.
    #[arg(long, env = "LIVESTACK_LOCATION", value_parser = parse_location, allow_hyphen_values = true)]
    location: Option<(f64, f64)>,
    /// The control plane: `redis://HOST:PORT[/DB]`, `rediss://...`,
    /// `redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB]`. Without it, the
    /// in-memory control plane (one box).
    #[arg(long, env = "LIVESTACK_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// Base URL clients and edges use for this node's HTTP (default
    /// `http://<http address>`).
    #[arg(long, env = "LIVESTACK_PUBLIC_URL")]
    public_url: Option<String>,
    /// Registry heartbeat interval, e.g. 1s.
    #[arg(long, env = "LIVESTACK_HEARTBEAT", value_parser = humantime::parse_duration)]
    heartbeat: Option<Duration>,
    /// Registry record and placement lease lifetime, e.g. 3s.
    #[arg(long, env = "LIVESTACK_HEARTBEAT_TTL", value_parser = humantime::parse_duration)]
    heartbeat_ttl: Option<Duration>,
    /// How long cached stream keys may authorize new publishers while the
    /// control plane is unreachable, e.g. 5m (0s: never).
    #[arg(long, env = "LIVESTACK_AUTH_GRACE", value_parser = humantime::parse_duration)]
    auth_grace: Option<Duration>,
    /// Admin API listener [default: 127.0.0.1:9091]; it starts only with a
    /// token.
    #[arg(long, env = "LIVESTACK_ADMIN")]
    admin: Option<SocketAddr>,
    /// Admin API bearer token (at least 16 characters).
    #[arg(long, env = "LIVESTACK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

fn parse_location(s: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = s
        .split_once(',')
        .ok_or_else(|| format!("expected LAT,LON, got {s:?}"))?;
    let lat: f64 = lat.trim().parse().map_err(|e| format!("latitude: {e}"))?;
    let lon: f64 = lon.trim().parse().map_err(|e| format!("longitude: {e}"))?;
    Ok((lat, lon))
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

/// The edge settings for these values, everything else at its default (no
/// control plane: every request goes to `origin`).
fn edge_config(
    http: SocketAddr,
    origin: &str,
    modules: Option<PathBuf>,
    public_url: Option<String>,
    token_keys: String,
) -> Result<livestack_edge_server::EdgeConfig> {
    let origin: livestack_edge_server::OriginUri = origin
        .parse()
        .with_context(|| format!("invalid origin URL {origin:?}"))?;
    let mut config = livestack_edge_server::EdgeConfig::new(http, origin, token_keys);
    config.modules = modules;
    config.public_url = public_url;
    Ok(config)
}

async fn start_edge(
    http: SocketAddr,
    origin: &str,
    modules: Option<PathBuf>,
    public_url: Option<String>,
    token_keys: String,
) -> Result<livestack_edge_server::Edge> {
    let config = edge_config(http, origin, modules, public_url, token_keys)?;
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
        if let Some(v) = self.node_id {
            c.cluster.node_id = v;
        }
        if let Some(v) = self.region {
            c.cluster.region = v;
        }
        if let Some(v) = self.location {
            c.cluster.location = Some(v);
        }
        if let Some(v) = self.redis {
            c.cluster.redis = Some(v);
        }
        if let Some(v) = self.public_url {
            c.cluster.public_url = Some(v);
        }
        if let Some(v) = self.heartbeat {
            c.cluster.heartbeat_interval = v;
        }
        if let Some(v) = self.heartbeat_ttl {
            c.cluster.heartbeat_ttl = v;
        }
        if let Some(v) = self.auth_grace {
            c.cluster.auth_grace = v;
        }
        if let Some(v) = self.admin {
            c.admin.listen = v;
        }
        if let Some(v) = self.admin_token {
            c.admin.token = Some(v);
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

/// The control plane `url` names (`--redis`), or the in-memory one.
async fn control_plane(url: Option<&str>) -> Result<Arc<dyn ControlPlane>> {
    match url {
        None => Ok(MemoryControlPlane::new()),
        Some(url) => redis_control_plane(url).await,
    }
}

async fn start(config: &OriginConfig) -> Result<Origin> {
    let control = control_plane(config.cluster.redis.as_deref()).await?;
    Origin::start(config, control)
        .await
        .context("starting the origin")
}

/// Resolves on SIGINT or SIGTERM (systemd and Kubernetes stop with it).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn print_endpoints(origin: &Origin) {
    println!(
        "node {} (region {}), control plane: {}",
        origin.node.id(),
        origin.node.region(),
        origin.node.client().store().backend()
    );
    if let Some(a) = origin.admin_addr {
        println!("admin API listening on http://{a}");
    }
    println!("SRT listening on {}", origin.srt_addr);
    println!("HTTP listening on http://{}", origin.http_addr);
    if let Some(a) = origin.https_addr {
        println!("HTTPS listening on https://{a}");
    }
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

fn main() -> Result<()> {
    let mut cli = Cli::parse();
    // The origin's configuration is resolved before logging starts: its
    // node id names this process in exported traces.
    let origin_config = match &mut cli.command {
        Command::Origin(args) => Some(std::mem::take(args).into_config()?),
        Command::Demo(args) => Some(std::mem::take(&mut args.origin).into_config()?),
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
        Command::Origin(_) => {
            let config = resolved(origin_config)?;
            let origin = start(&config).await?;
            print_endpoints(&origin);
            let node = Arc::clone(&origin.node);
            tokio::select! {
                _ = origin.run() => {}
                _ = shutdown_signal() => {}
            }
            // A clean stop leaves the registry at once instead of at the
            // heartbeat TTL.
            node.deregister().await;
        }
        Command::Admin(args) => admin_cli::run(args).await?,
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
            let mut config = edge_config(
                http,
                &origin,
                modules.clone(),
                args.public_url.or(file.public_url),
                keys,
            )?;
            config.registry_refresh = args.registry_refresh;
            if let Some(url) = args.redis.as_deref() {
                config.control = Some(redis_control_plane(url).await.context("--redis")?);
            }
            if !args.geo_country_headers.is_empty() {
                config.geo_headers.country =
                    livestack_edge_server::GeoHeaders::parse_names(&args.geo_country_headers)
                        .context("--geo-country-headers")?;
            }
            if !args.geo_location_headers.is_empty() {
                config.geo_headers.location =
                    livestack_edge_server::GeoHeaders::parse_names(&args.geo_location_headers)
                        .context("--geo-location-headers")?;
            }
            let edge = livestack_edge_server::Edge::start(config)
                .await
                .context("starting the edge")?;
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
                _ = shutdown_signal() => {}
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
            let config = resolved(origin_config)?;
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
                _ = shutdown_signal() => {}
            }
        }
    }
    Ok(())
}

/// The Redis control plane at `url` (see `livestack_control::RedisTarget`
/// for the URL forms). Redis being unreachable now is not an error: the
/// node starts and converges when it returns.
async fn redis_control_plane(url: &str) -> Result<Arc<dyn ControlPlane>> {
    let target = livestack_control::RedisTarget::parse(url).context("invalid --redis URL")?;
    let cp = livestack_control::RedisControlPlane::connect(
        target,
        livestack_control::RedisOptions::default(),
    )
    .await
    .context("connecting to Redis")?;
    Ok(cp)
}
