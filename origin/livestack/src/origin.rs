//! `livestack origin`: SRT ingest → LL-HLS/CMAF over HTTP/1.1 and HTTP/2.
//! Its flags ([`OriginArgs`]) are shared with `livestack demo`.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Args;
use livestack_origin::{
    Origin,
    config::{OriginConfig, StreamKeyConfig},
};

use crate::{control_plane, secrets, shutdown};

/// Flags shared by `origin` and `demo`; each overrides the TOML key of the
/// same name, and is itself overridden by nothing.
#[derive(Debug, Default, Args)]
pub(crate) struct OriginArgs {
    /// TOML configuration file (every key documented in the README).
    #[arg(long, env = "LIVESTACK_CONFIG")]
    config: Option<PathBuf>,
    /// SRT listener address (UDP) [default: 127.0.0.1:9000].
    #[arg(long, env = "LIVESTACK_SRT")]
    srt: Option<SocketAddr>,
    /// HTTP listener address (TCP) [default: 127.0.0.1:8080].
    #[arg(long, env = "LIVESTACK_HTTP")]
    http: Option<SocketAddr>,
    /// HTTPS listener address: HTTP/1.1 and HTTP/2 on TCP, HTTP/3 on UDP
    /// at the same port (announced by Alt-Svc); off unless given.
    #[arg(long, env = "LIVESTACK_HTTPS")]
    https: Option<SocketAddr>,
    /// Media over QUIC listener address (UDP): WebTransport at `/moq` and
    /// raw QUIC with the MoQ ALPNs; off unless given. Same certificate as
    /// HTTPS.
    #[arg(long, env = "LIVESTACK_WEBTRANSPORT")]
    webtransport: Option<SocketAddr>,
    /// WebRTC UDP address (one port for every session, ICE-lite): WHIP
    /// ingest at `POST /whip/NAME` on the HTTP listeners; off unless given.
    #[arg(long, env = "LIVESTACK_WEBRTC")]
    webrtc: Option<SocketAddr>,
    /// The IP announced to WebRTC clients when it is not the bound one
    /// (NAT, cloud VMs).
    #[arg(long, env = "LIVESTACK_WEBRTC_PUBLIC_IP")]
    webrtc_public_ip: Option<std::net::IpAddr>,
    /// WebRTC sessions (WHIP publishers and WHEP viewers) held at once;
    /// one more offer gets 503. Default 512 (what one core serves at
    /// 1 Mbit/s).
    #[arg(long, env = "LIVESTACK_WEBRTC_MAX_SESSIONS", value_name = "N")]
    webrtc_max_sessions: Option<usize>,
    /// PEM certificate chain for HTTPS (self-signed when omitted).
    #[arg(long, env = "LIVESTACK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "LIVESTACK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// SRT receiver latency, e.g. 120ms.
    #[arg(long, env = "LIVESTACK_SRT_LATENCY", value_parser = humantime::parse_duration)]
    srt_latency: Option<Duration>,
    /// Publishers this node takes at once; one more is refused with 2402
    /// (overload). Default 256.
    #[arg(long, env = "LIVESTACK_SRT_MAX_PUBLISHERS", value_name = "N")]
    srt_max_publishers: Option<usize>,
    /// A publisher sending more than this many bits per second (beyond a
    /// 2 s burst) is disconnected. Default 50000000 (50 Mbit/s).
    #[arg(
        long,
        env = "LIVESTACK_SRT_MAX_BITRATE",
        value_name = "BITS_PER_SECOND"
    )]
    srt_max_bitrate: Option<u64>,
    /// How long a gone publisher's playlists stay open for it to come back,
    /// e.g. 5s (0s: end them at once) [default: 5s].
    #[arg(long, env = "LIVESTACK_RECONNECT_GRACE", value_parser = humantime::parse_duration)]
    reconnect_grace: Option<Duration>,
    /// LL-HLS part target, e.g. 200ms.
    #[arg(long, env = "LIVESTACK_PART_TARGET", value_parser = humantime::parse_duration)]
    part_target: Option<Duration>,
    /// LL-HLS segment target, e.g. 2s.
    #[arg(long, env = "LIVESTACK_SEGMENT_TARGET", value_parser = humantime::parse_duration)]
    segment_target: Option<Duration>,
    /// Segments in the live window.
    #[arg(long, env = "LIVESTACK_WINDOW_SEGMENTS")]
    window_segments: Option<usize>,
    /// A stream key, NAME=KEY (NAME `*` for every stream); repeatable, or
    /// comma-separated in the environment. Adds to the keys of the config
    /// file. Prefer `--stream-keys-file` or the environment: arguments are
    /// visible to every local user in /proc.
    #[arg(
        long = "stream-key",
        value_name = "NAME=KEY",
        env = "LIVESTACK_STREAM_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    stream_keys: Vec<String>,
    /// File of stream keys, one NAME=KEY per line (`#` comments).
    #[arg(long, env = "LIVESTACK_STREAM_KEYS_FILE", value_name = "PATH")]
    stream_keys_file: Option<PathBuf>,
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
    /// Admin API bearer token (at least 16 characters). Prefer
    /// `--admin-token-file` or the environment.
    #[arg(long, env = "LIVESTACK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// File holding the admin API bearer token.
    #[arg(
        long,
        env = "LIVESTACK_ADMIN_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "admin_token"
    )]
    admin_token_file: Option<PathBuf>,
    /// Serve only the edges (edge credential) and play-token holders:
    /// streams without play keys, `/streams` and `/metrics` are closed to
    /// the public (metrics stay on the admin listener).
    #[arg(long, env = "LIVESTACK_CLOSED")]
    closed: bool,
    /// File holding the edge credential: the shared secret the edges send
    /// in `x-livestack-edge-credential` (at least 24 characters); also
    /// `LIVESTACK_EDGE_CREDENTIAL`.
    #[arg(long, env = "LIVESTACK_EDGE_CREDENTIAL_FILE", value_name = "PATH")]
    edge_credential_file: Option<PathBuf>,
    /// File holding the keys that verify the edges' session tokens (the
    /// edge's `--token-keys-file` format; public keys suffice for
    /// ES256/EdDSA): a `?token=` minted by the edge's signaling for this
    /// node then opens its stream for play (LL-HLS, MoQ). Also
    /// `LIVESTACK_TOKEN_KEYS`.
    #[arg(long, env = "LIVESTACK_TOKEN_KEYS_FILE", value_name = "PATH")]
    token_keys_file: Option<PathBuf>,
    #[command(flatten)]
    listener: crate::listener_args::ListenerArgs,
}

fn parse_location(s: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = s
        .split_once(',')
        .ok_or_else(|| format!("expected LAT,LON, got {s:?}"))?;
    let lat: f64 = lat.trim().parse().map_err(|e| format!("latitude: {e}"))?;
    let lon: f64 = lon.trim().parse().map_err(|e| format!("longitude: {e}"))?;
    Ok((lat, lon))
}

impl OriginArgs {
    /// The configuration file (`--config`) with these flags applied over
    /// it, validated.
    pub(crate) fn into_config(self) -> Result<OriginConfig> {
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
        if let Some(v) = self.webrtc {
            c.webrtc = Some(v);
        }
        if let Some(v) = self.webrtc_public_ip {
            c.webrtc_public_ip = Some(v);
        }
        if let Some(v) = self.webrtc_max_sessions {
            c.webrtc_options.max_sessions = v;
        }
        if let Some(v) = self.webtransport {
            c.webtransport = Some(v);
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert;
            c.tls_key = self.tls_key;
        }
        if let Some(v) = self.srt_latency {
            c.srt_options.latency = v;
        }
        if let Some(v) = self.srt_max_publishers {
            c.srt_options.max_publishers = v;
        }
        if let Some(v) = self.srt_max_bitrate {
            c.srt_options.max_bitrate = v;
        }
        if let Some(v) = self.reconnect_grace {
            c.hls.reconnect_grace = v;
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
        if let Some(path) = &self.admin_token_file {
            c.admin.token = Some(secrets::read_secret_file(path, "--admin-token-file")?);
        }
        if let Some(token) = &c.admin.token {
            secrets::refuse_placeholder(token, "the admin token")?;
        }
        c.access.closed |= self.closed;
        c.access.edge_credential = secrets::optional_secret(
            self.edge_credential_file.as_deref(),
            "--edge-credential-file",
            "LIVESTACK_EDGE_CREDENTIAL",
            "the edge credential",
        )?;
        c.access.session_keys = secrets::optional_secret(
            self.token_keys_file.as_deref(),
            "--token-keys-file",
            "LIVESTACK_TOKEN_KEYS",
            "the token keys",
        )?;
        self.listener.apply(&mut c.limits);
        let mut stream_keys = self.stream_keys;
        if let Some(path) = &self.stream_keys_file {
            stream_keys.extend(secrets::read_stream_keys_file(path)?);
        }
        for kv in stream_keys {
            let Some((stream, key)) = kv.split_once('=') else {
                // The value is a secret: say where, not what.
                bail!("--stream-key takes NAME=KEY; an entry has no '='");
            };
            secrets::refuse_placeholder(key, "a stream key")?;
            c.auth.keys.push(StreamKeyConfig {
                stream: stream.to_owned(),
                key: key.to_owned(),
            });
        }
        c.validate()?;
        Ok(c)
    }
}

/// Runs the origin until SIGINT or SIGTERM, then leaves the registry.
pub(crate) async fn run(config: &OriginConfig) -> Result<()> {
    let origin = start(config).await?;
    print_endpoints(&origin);
    let node = Arc::clone(&origin.node);
    tokio::select! {
        _ = origin.run() => {}
        _ = shutdown::signal() => {}
    }
    // A clean stop leaves the registry at once instead of at the
    // heartbeat TTL.
    node.deregister().await;
    Ok(())
}

/// Starts an origin with `config` and its control plane.
pub(crate) async fn start(config: &OriginConfig) -> Result<Origin> {
    let control = control_plane::from_url(config.cluster.redis.as_deref()).await?;
    Origin::start(config, control)
        .await
        .context("starting the origin")
}

/// Prints the node and the addresses it listens on.
pub(crate) fn print_endpoints(origin: &Origin) {
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
        println!(
            "HTTPS listening on https://{a} (HTTP/3 on UDP port {})",
            a.port()
        );
    }
    if let Some(a) = origin.webtransport_addr {
        println!(
            "Media over QUIC listening on https://{a}/moq (WebTransport) and raw QUIC (UDP {a})"
        );
    }
    if let Some(a) = origin.webrtc_addr {
        println!("WebRTC (WHIP at /whip/NAME, WHEP at /whep/NAME) on UDP {a}");
    }
    if let Some(hash) = &origin.certificate_sha256 {
        println!("certificate SHA-256 (WebTransport serverCertificateHashes): {hash}");
    }
}
