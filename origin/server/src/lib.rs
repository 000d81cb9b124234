//! The livestack origin: SRT ingest, the media fan-out, CMAF/LL-HLS
//! packaging and the HTTP/1.1 + HTTP/2 server.
//!
//! The protocol and media logic lives in sans-IO crates
//! (`livestack-media`, `livestack-cmaf`, `livestack-hls`) and in
//! [`packager`]; this crate is the tokio driver around them:
//!
//! ```text
//! SRT caller ──► srt (access control, TsIngest) ──► fanout (broadcast, GOP cache)
//!                                                     │
//!                                        streams (Packager ──► MediaPlaylist)
//!                                                     │
//!                                 http (playlists, blocking reload, parts) ──► viewers
//! ```

pub mod config;
pub mod control;
pub mod demo;
pub mod fanout;
pub mod http;
pub mod metrics;
pub mod packager;
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
    config::OriginConfig, control::ControlPlane, http::HttpState, metrics::Metrics,
    srt::IngestContext, streams::Streams,
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
    tasks: JoinSet<()>,
}

impl Origin {
    /// Binds every listener and starts serving.
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
        if control.is_open() {
            warn!("no stream keys configured: any SRT caller may publish any stream");
        }

        let ctx = Arc::new(IngestContext {
            control,
            streams: streams.clone(),
            metrics: metrics.clone(),
            next_session: AtomicU64::new(1),
        });
        let (srt_addr, srt_task) = srt::listen(config.srt, config.srt_options.latency, ctx)
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
        });
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
        info!(%srt_addr, %http_addr, ?https_addr, "origin listening");
        Ok(Self {
            srt_addr,
            http_addr,
            https_addr,
            streams,
            metrics,
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
