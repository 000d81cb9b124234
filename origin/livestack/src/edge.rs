//! `livestack edge`: the edge PoP (WASM components, LL-HLS cache) in front
//! of an origin, and the token key configuration it shares with
//! `livestack token` ([`KeyArgs`]).

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{control_plane, shutdown};

/// The edge's TOML file (`--config`), every key optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EdgeFile {
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
pub(crate) struct KeyArgs {
    /// TOML file with `token_keys` (and the edge's other keys).
    #[arg(long, env = "LIVESTACK_EDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Token keys: `kid:ALG:base64url(secret)` entries, comma-separated
    /// (ALG HS256, ES256 or EdDSA); the first key of an algorithm signs.
    #[arg(long, env = "LIVESTACK_TOKEN_KEYS", hide_env_values = true)]
    token_keys: Option<String>,
    /// File holding the token keys (same syntax as `--token-keys`).
    #[arg(
        long,
        env = "LIVESTACK_TOKEN_KEYS_FILE",
        value_name = "PATH",
        conflicts_with = "token_keys"
    )]
    token_keys_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The edge's file (`--config`, empty without one) and the token keys
    /// (`--token-keys` first, then the file's).
    pub(crate) fn resolve(&self) -> Result<(EdgeFile, String)> {
        let file = EdgeFile::load(self.config.as_deref())?;
        let from_file = match &self.token_keys_file {
            Some(path) => Some(crate::secrets::read_secret_file(path, "--token-keys-file")?),
            None => None,
        };
        let keys = from_file
            .or_else(|| self.token_keys.clone())
            .or_else(|| file.token_keys.clone())
            .context(
                "no token keys: pass --token-keys-file, LIVESTACK_TOKEN_KEYS or token_keys in --config",
            )?;
        crate::secrets::refuse_placeholder(&keys, "the token keys")?;
        Ok((file, keys))
    }
}

/// `livestack edge` flags.
#[derive(Debug, Args)]
pub(crate) struct EdgeArgs {
    /// HTTP listener address [default: 127.0.0.1:8081].
    #[arg(long, env = "LIVESTACK_EDGE_HTTP")]
    http: Option<SocketAddr>,
    /// Origin base URL, e.g. `http://127.0.0.1:8080`. Optional with
    /// --redis (the registry names the origins; while it lists none,
    /// `/live/` requests get 503 with Retry-After); required without.
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
    /// File holding the origin credential this edge presents to its
    /// origins (`x-livestack-edge-credential`; the origins'
    /// `--edge-credential-file`); also `LIVESTACK_ORIGIN_CREDENTIAL`.
    #[arg(long, env = "LIVESTACK_ORIGIN_CREDENTIAL_FILE", value_name = "PATH")]
    origin_credential_file: Option<PathBuf>,
    /// A configuration value for the components, `KEY=VALUE`, repeatable:
    /// `routing.nearest-region-first=true` when the origins relay streams
    /// to each other (viewers go to their nearest region, whose origin
    /// pulls the stream), `routing.load-cap=0.85`,
    /// `routing.max-heartbeat-age-ms=10000`.
    #[arg(long = "module-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    module_config: Vec<(String, String)>,
    #[command(flatten)]
    listener: crate::listener_args::ListenerArgs,
    #[command(flatten)]
    keys: KeyArgs,
}

/// The edge settings for these values, everything else at its default (no
/// control plane: every request goes to `origin`; without an origin, the
/// caller must add one).
fn edge_config(
    http: SocketAddr,
    origin: Option<&str>,
    modules: Option<PathBuf>,
    public_url: Option<String>,
    token_keys: String,
) -> Result<livestack_edge_server::EdgeConfig> {
    let mut config = match origin {
        Some(origin) => {
            let origin: livestack_edge_server::OriginUri = origin
                .parse()
                .with_context(|| format!("invalid origin URL {origin:?}"))?;
            livestack_edge_server::EdgeConfig::new(http, origin, token_keys)
        }
        None => livestack_edge_server::EdgeConfig::registry_only(http, token_keys),
    };
    config.modules = modules;
    config.public_url = public_url;
    Ok(config)
}

/// `KEY=VALUE` of `--module-config`.
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Starts an edge on `http` in front of `origin` (no control plane).
pub(crate) async fn start(
    http: SocketAddr,
    origin: &str,
    modules: Option<PathBuf>,
    public_url: Option<String>,
    token_keys: String,
) -> Result<livestack_edge_server::Edge> {
    let config = edge_config(http, Some(origin), modules, public_url, token_keys)?;
    livestack_edge_server::Edge::start(config)
        .await
        .context("starting the edge")
}

/// Runs the edge until SIGINT or SIGTERM; SIGHUP reloads `--modules`.
pub(crate) async fn run(args: EdgeArgs) -> Result<()> {
    let (file, keys) = args.keys.resolve()?;
    let http = args
        .http
        .or(file.http)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081)));
    let modules = args.modules.or(file.modules);
    let public_url = args.public_url.or(file.public_url);
    let origin = args.origin.or(file.origin);
    if origin.is_none() && args.redis.is_none() {
        // With --redis the registry alone names the origins.
        bail!("no origin: pass --origin URL, or --redis URL to route by the origin registry");
    }
    let mut config = edge_config(http, origin.as_deref(), modules.clone(), public_url, keys)?;
    config.registry_refresh = args.registry_refresh;
    config.origin_credential = crate::secrets::optional_secret(
        args.origin_credential_file.as_deref(),
        "--origin-credential-file",
        "LIVESTACK_ORIGIN_CREDENTIAL",
        "the origin credential",
    )?;
    config.module_config = args.module_config.into_iter().collect();
    args.listener.apply(&mut config.listener);
    if let Some(url) = args.redis.as_deref() {
        config.control = Some(control_plane::redis(url).await.context("--redis")?);
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
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
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
        _ = shutdown::signal() => {}
    }
    Ok(())
}
