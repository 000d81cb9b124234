//! The livestack origin: SRT ingest, the media fan-out, CMAF/LL-HLS
//! packaging and the HTTP/1.1 + HTTP/2 server.
//!
//! The protocol and media logic lives in sans-IO crates
//! (`livestack-media`, `livestack-cmaf`, `livestack-hls`,
//! `livestack-packager`); this crate is the tokio driver around them:
//!
//! ```text
//! SRT caller ──► srt (access control, TsIngest) ──► fanout (broadcast, GOP cache)
//!                                                     │
//!                     streams (one task per stream owns its packager::Broadcast,
//!                              publishes immutable snapshots)
//!                                                     │
//!                                 http (playlists, blocking reload, parts) ──► viewers
//! ```

pub mod admin;
pub mod cluster;
pub mod config;
pub mod control;
pub mod demo;
pub mod fanout;
pub mod h3;
pub mod http;
pub mod metrics;
pub mod moq;
pub mod moq_ingest;
pub mod relay;
pub mod rooms;
/// The sans-IO packager (re-exported: the origin's APIs use its types).
pub use livestack_packager as packager;
pub mod srt;
pub mod streams;
pub mod tls;
pub mod webrtc;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
};

use tokio::{
    net::{TcpListener, UdpSocket},
    task::JoinSet,
};
use tracing::{info, warn};

use crate::{
    admin::AdminState,
    cluster::Node,
    config::{ClusterConfig, OriginConfig},
    control::{ClientOptions, ControlClient, ControlPlane},
    http::HttpState,
    metrics::Metrics,
    srt::IngestContext,
    streams::Streams,
};

/// Errors starting the origin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not bind.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
}

/// A running origin. Dropping it stops every listener.
#[derive(Debug)]
pub struct Origin {
    /// Bound SRT address.
    pub srt_addr: SocketAddr,
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// Bound HTTPS address, if enabled.
    pub https_addr: Option<SocketAddr>,
    /// SHA-256 of the HTTPS and WebTransport certificate (lower-case hex),
    /// if either is enabled: WebTransport's `serverCertificateHashes` value
    /// for a self-signed one. Also served at `/certificate.sha256`.
    pub certificate_sha256: Option<String>,
    /// Bound Media over QUIC (WebTransport and raw QUIC) UDP address, if
    /// enabled.
    pub webtransport_addr: Option<SocketAddr>,
    /// Bound WebRTC UDP address (WHIP), if enabled.
    pub webrtc_addr: Option<SocketAddr>,
    /// The streams served (the demo source publishes into it directly).
    pub streams: Arc<Streams>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// This node (registry, placement, admission).
    pub node: Arc<Node>,
    /// Bound admin API address, if enabled (`admin.token` set).
    pub admin_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
}

impl Origin {
    /// Binds every listener and starts serving, as a node of the deployment
    /// whose control plane is `control`: the configuration's stream keys are
    /// seeded into it, the node registers and heartbeats (see [`cluster`]),
    /// and with `admin.token` set the admin API listens on `admin.listen`.
    ///
    /// A control plane that is unreachable at start is not an error: the
    /// node serves, refuses publishers it cannot authorize, and registers
    /// when the control plane returns.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(
        config: &OriginConfig,
        control: Arc<dyn ControlPlane>,
    ) -> Result<Self, StartError> {
        config.validate()?;
        let metrics = Arc::new(Metrics::new());
        let streams = Streams::new(config.hls.clone(), metrics.clone());
        let mut tasks = JoinSet::new();

        // Bind first: the registry record carries the bound addresses.
        let (srt_socket, srt_bound) = bind_srt(config.srt).await?;
        let (listener, http_addr) = bind_tcp("HTTP", config.http).await?;
        let certificate = if config.https.is_some() || config.webtransport.is_some() {
            Some(https_certificate(config)?)
        } else {
            None
        };
        let certificate_sha256 = certificate.as_ref().map(tls::leaf_sha256_hex);
        let moq_endpoint = match (config.webtransport, &certificate) {
            (Some(addr), Some(ck)) => Some(bind_moq(config, addr, ck.clone())?),
            _ => None,
        };
        let webtransport_addr = moq_endpoint.as_ref().map(|(_, bound)| *bound);
        // Browsers pin a self-signed certificate by its hash; a configured
        // (publicly trusted) one needs none, and a hash would make them
        // apply the 14-day rule to it.
        let advertised_hashes = match (&webtransport_addr, &config.tls_cert, &certificate_sha256) {
            (Some(_), None, Some(hash)) => vec![hash.clone()],
            _ => Vec::new(),
        };
        let node = start_node(
            config,
            control,
            advertised_urls(&config.cluster, http_addr, srt_bound, webtransport_addr),
            advertised_hashes,
            &metrics,
            &mut tasks,
        )
        .await;
        if let Some(keys) = &config.access.session_keys {
            node.set_session_keys(keys)
                .map_err(|e| StartError::Config(config::ConfigError::Invalid(e)))?;
        }
        let ctx = Arc::new(IngestContext {
            node: node.clone(),
            streams: streams.clone(),
            metrics: metrics.clone(),
            next_connection: AtomicU64::new(1),
            limits: config.srt_options.clone(),
            publishing: std::sync::atomic::AtomicUsize::new(0),
        });
        // Before the ingest listens: every broadcast reaches the MoQ egress.
        if let Some((endpoint, _)) = moq_endpoint {
            start_moq(config, endpoint, &ctx, &mut tasks);
        }
        let (srt_addr, srt_task) = srt::listen(srt_socket, ctx.clone())
            .await
            .map_err(bind_error("SRT", config.srt))?;
        tasks.spawn(srt_task);

        let relay = config.cluster.relay.then(|| {
            relay::Relay::new(
                node.clone(),
                streams.clone(),
                metrics.clone(),
                config.access.edge_credential.clone(),
                config.cluster.relay_idle,
            )
        });
        let whip = match config.webrtc {
            Some(addr) => {
                let limits = livestack_sfu::Limits {
                    max_sessions: config.webrtc_options.max_sessions,
                };
                let webrtc = livestack_sfu::WebRtc::bind(addr, config.webrtc_public_ip, limits)
                    .await
                    .map_err(bind_error("WebRTC (UDP)", addr))?;
                Some(webrtc::Whip::new(webrtc, ctx.clone(), config.access.closed))
            }
            None => None,
        };
        let webrtc_addr = whip.as_ref().map(|w| w.udp_addr());
        let state = Arc::new(HttpState {
            whip,
            relay,
            certificate_sha256: certificate_sha256.clone(),
            webtransport_port: webtransport_addr.map(|a| a.port()),
            streams: streams.clone(),
            metrics: metrics.clone(),
            node: node.clone(),
            admission: livestack_listener::Admission::new(
                config.limits,
                metrics.http_connections_refused.clone(),
            ),
            access: config.access.clone(),
            held: livestack_listener::HeldRequests::new(
                config.limits.max_held_requests_per_address,
                metrics.held_requests_refused.clone(),
            ),
        });
        tasks.spawn(http::serve(listener, None, None, state.clone()));
        let https_addr = match (config.https, certificate) {
            (Some(addr), Some(ck)) => Some(serve_https(addr, ck, state, &mut tasks).await?),
            _ => None,
        };
        let admin_addr = match &config.admin.token {
            Some(token) => Some(serve_admin(config, token, &node, &metrics, &mut tasks).await?),
            None => None,
        };
        info!(
            node = %node.id(),
            region = %node.region(),
            backend = node.client().store().backend(),
            %srt_addr,
            %http_addr,
            ?https_addr,
            ?admin_addr,
            "origin listening"
        );
        Ok(Self {
            srt_addr,
            http_addr,
            https_addr,
            certificate_sha256,
            webtransport_addr,
            webrtc_addr,
            streams,
            metrics,
            node,
            admin_addr,
            tasks,
        })
    }

    /// Runs until a listener task ends (it does not in normal operation).
    pub async fn run(mut self) {
        let _ = self.tasks.join_next().await;
    }

    /// Adds a task whose lifetime is tied to the origin's.
    pub fn spawn(&mut self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(f);
    }
}

/// Maps a bind failure of listener `what` on `addr` to [`StartError::Bind`].
fn bind_error(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Bind { what, addr, source }
}

/// Binds the SRT listener's UDP socket; returns it with its bound address.
async fn bind_srt(addr: SocketAddr) -> Result<(UdpSocket, SocketAddr), StartError> {
    let socket = UdpSocket::bind(addr)
        .await
        .map_err(bind_error("SRT", addr))?;
    let bound = socket.local_addr().map_err(bind_error("SRT", addr))?;
    Ok((socket, bound))
}

/// Binds the TCP listener `what` (HTTP, HTTPS, admin) on `addr`; returns
/// it with its bound address.
async fn bind_tcp(
    what: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = http::bind(addr).await.map_err(bind_error(what, addr))?;
    let bound = listener.local_addr().map_err(bind_error(what, addr))?;
    Ok((listener, bound))
}

/// The URLs this node's registry record advertises: the configured public
/// ones, else the bound addresses.
fn advertised_urls(
    cluster: &ClusterConfig,
    http_addr: SocketAddr,
    srt_addr: SocketAddr,
    webtransport_addr: Option<SocketAddr>,
) -> BTreeMap<String, String> {
    let http = cluster
        .public_url
        .as_ref()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{http_addr}"));
    let srt = cluster
        .public_srt
        .clone()
        .unwrap_or_else(|| format!("srt://{srt_addr}"));
    let mut urls = BTreeMap::from([("http".to_owned(), http), ("srt".to_owned(), srt)]);
    if let Some(wt) = webtransport_addr {
        // The public host of the HTTP URL, else the bound address, at the
        // WebTransport port.
        let host = cluster
            .public_url
            .as_ref()
            .and_then(|u| u.parse::<::http::Uri>().ok())
            .and_then(|u| u.host().map(str::to_owned));
        let url = match host {
            Some(h) => format!("https://{h}:{}{}", wt.port(), moq::WEBTRANSPORT_PATH),
            None => format!("https://{wt}{}", moq::WEBTRANSPORT_PATH),
        };
        urls.insert("webtransport".to_owned(), url);
    }
    urls
}

/// This node of the deployment: its control-plane client (with the
/// configured key cache and grace), the configuration's stream keys seeded,
/// and its agent (registry heartbeat, placement leases, commands) running
/// in `tasks`. Publishing is open (with a warning) when there are neither
/// stream keys nor a shared control plane.
async fn start_node(
    config: &OriginConfig,
    control: Arc<dyn ControlPlane>,
    urls: BTreeMap<String, String>,
    certificate_sha256: Vec<String>,
    metrics: &Arc<Metrics>,
    tasks: &mut JoinSet<()>,
) -> Arc<Node> {
    let cluster = &config.cluster;
    let open = config.auth.keys.is_empty() && cluster.redis.is_none();
    if open {
        warn!("no stream keys configured: any SRT caller may publish a stream that has no key");
    }
    let client = ControlClient::new(
        control,
        ClientOptions {
            cache_ttl: cluster.auth_cache_ttl,
            grace: cluster.auth_grace,
            ..ClientOptions::default()
        },
    );
    let node = Node::new(
        cluster,
        urls,
        certificate_sha256,
        client,
        metrics.clone(),
        open,
        control::config_keys(&config.auth.keys),
    );
    // Seeded now when the control plane is up, else by the heartbeat once
    // it is.
    node.seed_keys().await;
    tasks.spawn(node.clone().run());
    node
}

/// Binds the Media over QUIC listener (UDP `addr`) with `ck`; returns the
/// endpoint and its bound address.
fn bind_moq(
    config: &OriginConfig,
    addr: SocketAddr,
    ck: tls::CertAndKey,
) -> Result<(quinn::Endpoint, SocketAddr), StartError> {
    let quic = moq::server_config(ck, &config.limits)?;
    let endpoint =
        quinn::Endpoint::server(quic, addr).map_err(bind_error("WebTransport (UDP)", addr))?;
    let bound = endpoint
        .local_addr()
        .map_err(bind_error("WebTransport (UDP)", addr))?;
    Ok((endpoint, bound))
}

/// Starts the Media over QUIC egress: the node's MoQ origin (fed from every
/// broadcast that starts from now on) and its QUIC listener on `endpoint`.
fn start_moq(
    config: &OriginConfig,
    endpoint: quinn::Endpoint,
    ctx: &Arc<IngestContext>,
    tasks: &mut JoinSet<()>,
) {
    let (node, streams, metrics) = (&ctx.node, &ctx.streams, &ctx.metrics);
    // Every MoQ origin runs its driver for as long as the node.
    let mut origin = |what: &'static str| {
        let (origin, driver) = moq_net::origin::Producer::new(moq_net::origin::Config::default());
        tasks.spawn(async move {
            let end = moq_net::time::run(driver).await;
            tracing::debug!(reason = %end, what, "MoQ origin ended");
        });
        origin
    };
    let origins = moq::Origins {
        open: origin("open"),
        keyed: origin("keyed"),
        node: node.clone(),
        closed: config.access.closed,
    };
    // The relay origin: ingested broadcasts in the relay track format,
    // for other origins' relay sessions.
    let relay_origin = origin("relay");
    streams.add_egress(Arc::new(moq::MoqEgress::new(
        origins.open.clone(),
        origins.keyed.clone(),
        node.clone(),
        config.access.closed,
        metrics.clone(),
    )));
    let admission =
        livestack_listener::Admission::new(config.limits, metrics.http_connections_refused.clone());
    let credential = config.access.edge_credential.clone();
    streams.add_egress(Arc::new(relay::RelayEgress::new(
        relay_origin.clone(),
        node.clone(),
        credential.is_some(),
        config.access.closed,
    )));
    let relay = moq::RelayAccess {
        origin: relay_origin,
        credential,
    };
    tasks.spawn(moq::serve(
        endpoint,
        origins,
        Some(relay),
        Some(ctx.clone()),
        admission,
        metrics.clone(),
    ));
}

/// The HTTPS (and HTTP/3) certificate: the configured PEM files, or a
/// self-signed one for localhost when none are (see [`tls::self_signed`]).
fn https_certificate(config: &OriginConfig) -> Result<tls::CertAndKey, StartError> {
    Ok(match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => tls::load_pem(c, k)?,
        _ => {
            info!("no TLS certificate configured: using a self-signed one for localhost");
            tls::self_signed()?
        }
    })
}

/// Serves HTTP/2 and HTTP/1.1 over TLS (ALPN) on TCP `addr`, and HTTP/3 on
/// UDP at the same port, with `ck`; returns the bound address.
async fn serve_https(
    addr: SocketAddr,
    ck: tls::CertAndKey,
    state: Arc<HttpState>,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, StartError> {
    let quic = h3::server_config(
        tls::quic_server_config(ck.clone())?,
        state.admission.limits(),
    );
    let acceptor = tls::acceptor(ck)?;
    let (listener, bound) = bind_tcp("HTTPS", addr).await?;
    // HTTP/3 on the same port number over UDP (with port 0, the one the
    // TCP listener got), advertised on every TCP response.
    let endpoint =
        quinn::Endpoint::server(quic, bound).map_err(bind_error("HTTP/3 (UDP)", bound))?;
    let alt_svc = ::http::HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", bound.port()))
        .expect("an Alt-Svc value of ASCII digits");
    tasks.spawn(http::serve(
        listener,
        Some(acceptor),
        Some(alt_svc),
        state.clone(),
    ));
    tasks.spawn(h3::serve(endpoint, state));
    Ok(bound)
}

/// Serves the admin API on `admin.listen`, behind the bearer `token`;
/// returns the bound address.
async fn serve_admin(
    config: &OriginConfig,
    token: &str,
    node: &Arc<Node>,
    metrics: &Arc<Metrics>,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, StartError> {
    let (listener, bound) = bind_tcp("admin", config.admin.listen).await?;
    tasks.spawn(admin::serve(
        listener,
        Arc::new(AdminState {
            node: node.clone(),
            token: token.to_owned(),
            metrics: metrics.clone(),
            admission: livestack_listener::Admission::new(
                config.limits,
                metrics.admin_connections_refused.clone(),
            ),
        }),
    ));
    Ok(bound)
}
