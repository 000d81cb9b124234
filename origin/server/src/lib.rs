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
pub mod http;
pub mod metrics;
/// The sans-IO packager (re-exported: the origin's APIs use its types).
pub use livestack_packager as packager;
pub mod srt;
pub mod streams;
pub mod tls;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
};

use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::{
    admin::AdminState,
    cluster::Node,
    config::OriginConfig,
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
            },
        );

        // Bind first: the registry record carries the bound addresses.
        let srt_socket = tokio::net::UdpSocket::bind(config.srt)
            .await
            .map_err(|source| StartError::Bind {
                what: "SRT",
                addr: config.srt,
                source,
            })?;
        let srt_bound = srt_socket.local_addr().map_err(|source| StartError::Bind {
            what: "SRT",
            addr: config.srt,
            source,
        })?;
        let listener = http::bind(config.http)
            .await
            .map_err(|source| StartError::Bind {
                what: "HTTP",
                addr: config.http,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Bind {
            what: "HTTP",
            addr: config.http,
            source,
        })?;
        let mut urls = std::collections::BTreeMap::new();
        urls.insert(
            "http".to_owned(),
            cluster
                .public_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("http://{http_addr}")),
        );
        urls.insert(
            "srt".to_owned(),
            cluster
                .public_srt
                .clone()
                .unwrap_or_else(|| format!("srt://{srt_bound}")),
        );
        let node = Node::new(
            cluster,
            urls,
            client,
            metrics.clone(),
            open,
            control::config_keys(&config.auth.keys),
        );
        // Seeded now when the control plane is up, else by the heartbeat
        // once it is.
        node.seed_keys().await;
        tasks.spawn(node.clone().run());

        let ctx = Arc::new(IngestContext {
            node: node.clone(),
            streams: streams.clone(),
            metrics: metrics.clone(),
            next_connection: AtomicU64::new(1),
        });
        let (srt_addr, srt_task) = srt::listen(srt_socket, config.srt_options.latency, ctx)
            .await
            .map_err(|source| StartError::Bind {
                what: "SRT",
                addr: config.srt,
                source,
            })?;
        tasks.spawn(srt_task);

        let state = Arc::new(HttpState {
            streams: streams.clone(),
            metrics: metrics.clone(),
            node: node.clone(),
        });
        tasks.spawn(http::serve(listener, None, state.clone()));

        let mut https_addr = None;
        if let Some(addr) = config.https {
            let ck = match (&config.tls_cert, &config.tls_key) {
                (Some(c), Some(k)) => tls::load_pem(c, k)?,
                _ => {
                    info!("no TLS certificate configured: using a self-signed one for localhost");
                    tls::self_signed()?
                }
            };
            let acceptor = tls::acceptor(ck)?;
            let listener = http::bind(addr).await.map_err(|source| StartError::Bind {
                what: "HTTPS",
                addr,
                source,
            })?;
            https_addr = listener.local_addr().ok();
            tasks.spawn(http::serve(listener, Some(acceptor), state));
        }
        let mut admin_addr = None;
        if let Some(token) = &config.admin.token {
            let addr = config.admin.listen;
            let listener = http::bind(addr).await.map_err(|source| StartError::Bind {
                what: "admin",
                addr,
                source,
            })?;
            admin_addr = listener.local_addr().ok();
            tasks.spawn(admin::serve(
                listener,
                Arc::new(AdminState {
                    node: node.clone(),
                    token: token.clone(),
                }),
            ));
        }
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
