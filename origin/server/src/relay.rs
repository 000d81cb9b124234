//! Origin-to-origin relay over Media over QUIC.
//!
//! A stream is published to one origin (its *placement* in the control
//! plane). Any other origin asked for it by a viewer pulls it from there
//! and serves it locally, over every egress (LL-HLS, MoQ), so an edge can
//! send each viewer to its nearest origin.
//!
//! # Holding side
//!
//! [`RelayEgress`] publishes every broadcast this node *ingests* into a
//! second MoQ origin, in the lossless [relay track
//! format](livestack_media::relay_track) (decoding times, exact track
//! parameters), served only to WebTransport sessions at [`RELAY_PATH`] on
//! the `--webtransport` port. With an edge credential configured
//! ([`AccessConfig::edge_credential`](crate::config::AccessConfig)) a relay
//! session must present it
//! ([`EDGE_CREDENTIAL_HEADER`](livestack_tokens::EDGE_CREDENTIAL_HEADER)
//! on the CONNECT) and gets every ingested broadcast; without one, relay
//! sessions are anonymous and get only the streams anyone may play (none on
//! a closed origin). `livestack_origin_relay_sessions` counts the sessions
//! open now: one per stream per pulling origin.
//!
//! # Pulling side
//!
//! [`Relay::stream`] is called by the HTTP handlers for a stream this node
//! does not hold (or holds only as ended). It reads the placement; if
//! another node holds the stream, it opens one WebTransport session to that
//! node's advertised `webtransport` URL (path replaced by [`RELAY_PATH`];
//! the certificate pinned by the SHA-256 the registry advertises, or
//! verified against the system roots when it advertises none), subscribes
//! to the catalog and every track, and starts the stream here from
//! [`Source::Relay`]. However many viewers ask, one pull per stream runs;
//! concurrent requests wait for it (at most [`PULL_START_TIMEOUT`]). The
//! pull ends when the stream has had no HTTP viewer for
//! [`ClusterConfig::relay_idle`](crate::config::ClusterConfig) (the
//! stream is forgotten at once, so the next viewer pulls afresh), or when
//! the upstream ends (the stream ends as an ingest would).
//!
//! # No loops
//!
//! A pulled stream is never offered to relay sessions (only
//! [`Source::Ingest`] broadcasts are), and a node never pulls a stream
//! whose placement is itself: every relay path is one hop from the
//! publisher's node, whatever the placement says when.
//!
//! # Limits
//!
//! At most [`MAX_CONCURRENT_STARTS`] pulls are starting at once (placement
//! lookup, connection, catalog); a name whose pull failed is not tried
//! again for [`RETRY_AFTER_FAILURE`] (at most [`MAX_REMEMBERED_FAILURES`]
//! names remembered), so requests for unknown names cost one control-plane
//! read per name per second at most. Malformed relayed records are
//! dropped and counted (`livestack_origin_relay_frames_refused_total`);
//! the track continues at its next group.
//!
//! Not yet: MoQ viewers of a pulled stream do not keep the pull alive
//! (only HTTP viewers count), and a MoQ subscription does not start a pull.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use bytes::Bytes;
use livestack_media::{
    model::{Frame, TrackParams},
    relay_track::{self, CATALOG_TRACK, Catalog},
};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::{
    cluster::Node,
    fanout::{self, BroadcastSubscriber, MediaEvent},
    metrics::Metrics,
    moq::{AUDIO_GROUP, MICROS},
    streams::{Egress, Source, Stream, Streams},
    tls,
};

/// The WebTransport path of relay sessions on the `--webtransport` port.
pub const RELAY_PATH: &str = "/relay";

/// How long a viewer's request waits for a pull to start serving.
pub const PULL_START_TIMEOUT: Duration = Duration::from_secs(5);

/// Pulls starting at once (lookups and connections in flight).
pub const MAX_CONCURRENT_STARTS: usize = 32;

/// A name whose pull failed is not tried again for this long.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Names whose failed pulls are remembered at most.
pub const MAX_REMEMBERED_FAILURES: usize = 4096;

/// Events buffered between a pull's track readers and its broadcast.
const TRACK_EVENTS: usize = 1024;

// ---------------------------------------------------------------------
// Holding side
// ---------------------------------------------------------------------

/// Publishes every ingested broadcast into the relay MoQ origin, in the
/// relay track format.
#[derive(Clone)]
pub struct RelayEgress {
    origin: moq_net::origin::Producer,
    node: Arc<Node>,
    /// Without an edge credential: only streams anyone may play.
    open_only: bool,
    /// A closed origin without an edge credential relays nothing.
    closed: bool,
}

impl RelayEgress {
    /// An egress into `origin`; `credential` says whether relay sessions
    /// must present the edge credential, `closed` as
    /// [`AccessConfig::closed`](crate::config::AccessConfig::closed).
    pub fn new(
        origin: moq_net::origin::Producer,
        node: Arc<Node>,
        credential: bool,
        closed: bool,
    ) -> Self {
        Self {
            origin,
            node,
            open_only: !credential,
            closed: closed && !credential,
        }
    }
}

impl std::fmt::Debug for RelayEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayEgress")
            .field("open_only", &self.open_only)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Egress for RelayEgress {
    fn broadcast_started(
        &self,
        name: &str,
        _session: u64,
        source: &Source,
        media: &BroadcastSubscriber,
    ) {
        if *source != Source::Ingest {
            return;
        }
        let this = self.clone();
        let name = name.to_owned();
        let media = media.clone();
        tokio::spawn(async move {
            if this.closed
                || (this.open_only && this.node.authorize_play(&name, None).await.is_err())
            {
                debug!(stream = %name, "not offered to relay sessions: it needs a play token");
                return;
            }
            let Some(broadcast) = crate::moq::create_broadcast(&this.origin, &name).await else {
                return;
            };
            crate::moq::drive(&name, media, RelayBridge::new(broadcast)).await;
        });
    }
}

/// One track in the relay format.
struct RelayTrack {
    track: moq_net::track::Producer,
    /// The encoded parameter record, frame 0 of every group.
    params: Bytes,
    /// The parameters changed: the next frame starts a group (audio; video
    /// waits for its keyframe, which follows a change).
    new_params: bool,
    group: Option<(moq_net::group::Producer, i64)>,
    video: bool,
}

/// Feeds one relay broadcast from one consumer of the media relay.
struct RelayBridge {
    broadcast: moq_net::broadcast::Producer,
    catalog: Option<moq_net::track::Producer>,
    tracks: BTreeMap<u32, RelayTrack>,
    announced: bool,
}

impl RelayBridge {
    fn new(broadcast: moq_net::broadcast::Producer) -> Self {
        Self {
            broadcast,
            catalog: None,
            tracks: BTreeMap::new(),
            announced: false,
        }
    }

    fn track(&mut self, id: u32, params: &TrackParams) -> Result<(), moq_net::Error> {
        let encoded = relay_track::encode_params(params);
        if let Some(t) = self.tracks.get_mut(&id) {
            if t.params != encoded {
                t.params = encoded;
                t.new_params = true;
            }
            return Ok(());
        }
        let video = params.is_video();
        let priority = if video {
            hang::catalog::PRIORITY.video
        } else {
            hang::catalog::PRIORITY.audio
        };
        let track = self.broadcast.create_track(
            relay_track::track_name(id).as_str(),
            hang::container::track_info(priority),
        )?;
        self.tracks.insert(
            id,
            RelayTrack {
                track,
                params: encoded,
                new_params: false,
                group: None,
                video,
            },
        );
        if self.catalog.is_none() {
            self.catalog = Some(self.broadcast.create_track(
                CATALOG_TRACK,
                moq_net::track::Info::default().with_priority(hang::catalog::PRIORITY.catalog),
            )?);
        }
        if let Some(catalog) = &mut self.catalog {
            let mut group = catalog.append_group()?;
            group.write_frame(
                moq_net::Timestamp::now(),
                Catalog::new(self.tracks.keys().copied().collect()).encode(),
            )?;
            group.finish()?;
        }
        if !self.announced {
            self.broadcast.announce(moq_net::origin::Route::default())?;
            self.announced = true;
        }
        Ok(())
    }

    fn frame(&mut self, id: u32, frame: &Frame) -> Result<(), RelayError> {
        let Some(t) = self.tracks.get_mut(&id) else {
            return Ok(());
        };
        let micros = frame
            .pts
            .rebase(MICROS)
            .map_err(|_| RelayError::Time)?
            .ticks();
        let starts_group = if t.video {
            frame.keyframe
        } else {
            let span = i64::try_from(AUDIO_GROUP.as_micros()).unwrap_or(i64::MAX);
            t.new_params
                || t.group
                    .as_ref()
                    .is_none_or(|(_, start)| micros.saturating_sub(*start) >= span)
        };
        // moq-net's own timestamps (its staleness budget) cannot be
        // negative; the exact times travel in the relay frame.
        let timestamp = moq_net::Timestamp::from_micros(u64::try_from(micros).unwrap_or(0))
            .map_err(|_| RelayError::Time)?;
        if starts_group {
            finish_group(t);
            let mut group = t.track.append_group().map_err(RelayError::Moq)?;
            group
                .write_frame(timestamp, t.params.clone())
                .map_err(RelayError::Moq)?;
            t.new_params = false;
            t.group = Some((group, micros));
        }
        let Some((group, _)) = t.group.as_mut() else {
            // Mid-GOP after a loss: wait for the next keyframe.
            return Ok(());
        };
        let data = relay_track::encode_frame(frame).map_err(|_| RelayError::Time)?;
        group.write_frame(timestamp, data).map_err(RelayError::Moq)
    }
}

impl crate::moq::GroupWriter for RelayBridge {
    const WHAT: &'static str = "relay";

    fn track(&mut self, id: u32, params: &TrackParams) -> Result<(), String> {
        RelayBridge::track(self, id, params).map_err(|e| e.to_string())
    }

    fn frame(&mut self, id: u32, frame: Frame) -> Result<(), String> {
        RelayBridge::frame(self, id, &frame).map_err(|e| e.to_string())
    }

    fn end_group(&mut self, id: Option<u32>) {
        match id {
            Some(id) => self.tracks.get_mut(&id).into_iter().for_each(finish_group),
            None => self.tracks.values_mut().for_each(finish_group),
        }
    }

    fn skipped(&mut self, _groups: u64) {}

    fn finish(mut self) {
        for t in self.tracks.values_mut() {
            finish_group(t);
            let _ = t.track.finish();
        }
        if let Some(c) = self.catalog.take() {
            let _ = c.finish();
        }
        self.broadcast.close();
    }
}

fn finish_group(t: &mut RelayTrack) {
    if let Some((group, _)) = t.group.take() {
        let _ = group.finish();
    }
}

/// Why a frame was not relayed.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("timestamps on different clocks or out of range")]
    Time,
    #[error("moq: {0}")]
    Moq(moq_net::Error),
}

// ---------------------------------------------------------------------
// Pulling side
// ---------------------------------------------------------------------

/// Where a pull is.
#[derive(Debug, Clone)]
enum PullState {
    Starting,
    Serving(Arc<Stream>),
    Ended,
}

/// Pulls streams other origins hold (see the module docs).
#[derive(Debug)]
pub struct Relay {
    node: Arc<Node>,
    streams: Arc<Streams>,
    metrics: Arc<Metrics>,
    credential: Option<String>,
    idle: Duration,
    pulls: Mutex<HashMap<String, watch::Receiver<PullState>>>,
    failures: Mutex<HashMap<String, Instant>>,
    starts: Arc<Semaphore>,
}

/// Why a pull did not start or ended.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("no other origin holds the stream")]
    NotHeld,
    #[error("control plane: {0}")]
    Control(String),
    #[error("the holding node {0} advertises no webtransport URL")]
    NoUrl(String),
    #[error("bad upstream URL {0}")]
    Url(String),
    #[error("connection: {0}")]
    Connect(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("MoQ: {0}")]
    Moq(moq_net::Error),
    #[error("catalog: {0}")]
    Catalog(String),
}

impl Relay {
    /// A relay for this node, pulling into `streams`, presenting
    /// `credential` (the edge credential) to holders, letting a pull go
    /// after `idle` without viewers.
    pub fn new(
        node: Arc<Node>,
        streams: Arc<Streams>,
        metrics: Arc<Metrics>,
        credential: Option<String>,
        idle: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            node,
            streams,
            metrics,
            credential,
            idle,
            pulls: Mutex::default(),
            failures: Mutex::default(),
            starts: Arc::new(Semaphore::new(MAX_CONCURRENT_STARTS)),
        })
    }

    /// The stream `name` pulled from the origin that holds it, starting a
    /// pull unless one runs; waits up to [`PULL_START_TIMEOUT`]. `None`:
    /// no other origin holds it, it could not be reached, or too many
    /// pulls are starting.
    pub async fn stream(self: &Arc<Self>, name: &str) -> Option<Arc<Stream>> {
        let mut rx = self.pull(name)?;
        let deadline = tokio::time::Instant::now() + PULL_START_TIMEOUT;
        loop {
            match &*rx.borrow_and_update() {
                PullState::Serving(s) => return Some(s.clone()),
                PullState::Ended => return None,
                PullState::Starting => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// The running pull of `name`, or a new one.
    fn pull(self: &Arc<Self>, name: &str) -> Option<watch::Receiver<PullState>> {
        let mut pulls = self.pulls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = pulls.get(name)
            && !matches!(*rx.borrow(), PullState::Ended)
        {
            return Some(rx.clone());
        }
        {
            let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            failures.retain(|_, at| now.duration_since(*at) < RETRY_AFTER_FAILURE);
            if failures.contains_key(name) {
                return None;
            }
        }
        let permit = self.starts.clone().try_acquire_owned().ok()?;
        let (tx, rx) = watch::channel(PullState::Starting);
        pulls.insert(name.to_owned(), rx.clone());
        let this = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            let outcome = this.run(&name, &tx, permit).await;
            let served = matches!(*tx.borrow(), PullState::Serving(_));
            tx.send_replace(PullState::Ended);
            {
                let mut pulls = this.pulls.lock().unwrap_or_else(PoisonError::into_inner);
                if pulls
                    .get(&name)
                    .is_some_and(|r| r.same_channel(&tx.subscribe()))
                {
                    pulls.remove(&name);
                }
            }
            let label = match &outcome {
                Ok(Ended::Idle) => "idle",
                Ok(Ended::Upstream) => "upstream_ended",
                Err(PullError::NotHeld) => return,
                Err(_) => "failed",
            };
            this.metrics
                .relay_pulls_ended
                .get_or_create(&vec![("outcome", label.to_owned())])
                .inc();
            match outcome {
                Ok(_) => info!(stream = %name, outcome = label, "relay pull ended"),
                Err(e) => {
                    if !served {
                        let mut failures =
                            this.failures.lock().unwrap_or_else(PoisonError::into_inner);
                        if failures.len() < MAX_REMEMBERED_FAILURES {
                            failures.insert(name.clone(), Instant::now());
                        }
                    }
                    warn!(stream = %name, error = %e, "relay pull failed");
                }
            }
        });
        Some(rx)
    }

    /// One pull, from the placement lookup to its end.
    async fn run(
        &self,
        name: &str,
        state: &watch::Sender<PullState>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<Ended, PullError> {
        let (holder, url, hashes) = self.upstream(name).await?;
        let upstream = Upstream::connect(&url, &hashes, self.credential.as_deref()).await?;
        let broadcast = tokio::time::timeout(
            PULL_START_TIMEOUT,
            upstream.origin.consume().routed_broadcast(name),
        )
        .await
        .map_err(|_| PullError::Timeout("the broadcast"))?
        .map_err(PullError::Moq)?;
        let mut catalog = broadcast
            .track(CATALOG_TRACK)
            .map_err(PullError::Moq)?
            .subscribe(moq_net::track::Subscription::default())
            .await
            .map_err(PullError::Moq)?;
        let first = tokio::time::timeout(PULL_START_TIMEOUT, next_catalog(&mut catalog))
            .await
            .map_err(|_| PullError::Timeout("the catalog"))??;

        let (producer, subscriber) = fanout::broadcast();
        let stream = self.streams.start_from(
            name,
            Source::Relay {
                node: holder.clone(),
            },
            &subscriber,
        );
        drop(subscriber);
        state.send_replace(PullState::Serving(stream.clone()));
        drop(permit);
        self.metrics.relay_pulls.inc();
        info!(stream = %name, from = %holder, "pulling from the origin that holds the stream");

        let (events, mut received) = mpsc::channel(TRACK_EVENTS);
        let mut readers = tokio::task::JoinSet::new();
        let mut reading: Vec<u32> = Vec::new();
        let mut spawn_readers = |c: &Catalog, readers: &mut tokio::task::JoinSet<()>| {
            for id in &c.tracks {
                if !reading.contains(id) {
                    reading.push(*id);
                    readers.spawn(read_track(
                        broadcast.clone(),
                        *id,
                        events.clone(),
                        self.metrics.clone(),
                    ));
                }
            }
        };
        spawn_readers(&first, &mut readers);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_viewer = Instant::now();
        let ended = loop {
            tokio::select! {
                ev = received.recv() => match ev {
                    Some(ev) => producer.send(ev),
                    None => break Ended::Upstream,
                },
                c = next_catalog(&mut catalog) => match c {
                    Ok(c) => spawn_readers(&c, &mut readers),
                    Err(_) => break Ended::Upstream,
                },
                _ = tick.tick() => {
                    if self.node.viewers.count(name) > 0 {
                        last_viewer = Instant::now();
                    } else if last_viewer.elapsed() >= self.idle {
                        break Ended::Idle;
                    }
                }
                _ = broadcast.closed() => break Ended::Upstream,
            }
        };
        readers.abort_all();
        producer.send(MediaEvent::End);
        drop(producer);
        if matches!(ended, Ended::Idle) {
            self.streams.forget(name, stream.session);
        }
        self.metrics.relay_pulls.dec();
        drop(upstream);
        Ok(ended)
    }

    /// The node holding `name` (not this one), its relay URL and the
    /// certificate hashes it advertises.
    async fn upstream(&self, name: &str) -> Result<(String, url::Url, Vec<String>), PullError> {
        let store = self.node.client().store();
        let placement = tokio::time::timeout(PULL_START_TIMEOUT, store.placement(name))
            .await
            .map_err(|_| PullError::Timeout("the placement"))?
            .map_err(|e| PullError::Control(e.to_string()))?
            .ok_or(PullError::NotHeld)?;
        if placement.node_id == self.node.id() {
            return Err(PullError::NotHeld);
        }
        let nodes = tokio::time::timeout(PULL_START_TIMEOUT, store.nodes())
            .await
            .map_err(|_| PullError::Timeout("the registry"))?
            .map_err(|e| PullError::Control(e.to_string()))?;
        let holder = nodes
            .into_iter()
            .find(|n| n.id == placement.node_id)
            .ok_or(PullError::NotHeld)?;
        let url = holder
            .urls
            .get("webtransport")
            .ok_or_else(|| PullError::NoUrl(holder.id.clone()))?;
        let mut url = url::Url::parse(url).map_err(|_| PullError::Url(url.clone()))?;
        url.set_path(RELAY_PATH);
        url.set_query(None);
        Ok((holder.id, url, holder.certificate_sha256))
    }
}

/// How a pull ended (other than in error).
#[derive(Debug, Clone, Copy)]
enum Ended {
    Idle,
    Upstream,
}

/// A MoQ session to the holding origin, with its driver tasks.
struct Upstream {
    origin: moq_net::origin::Producer,
    _session: moq_net::Session,
    tasks: [tokio::task::JoinHandle<moq_net::Error>; 2],
    _endpoint: quinn::Endpoint,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Upstream {
    /// Connects to `url` over WebTransport (HTTP/3 CONNECT, RFC 9220 and
    /// the WebTransport over HTTP/3 draft), pinning `hashes` (or the system
    /// roots without any), presenting `credential`, and sets up MoQ.
    async fn connect(
        url: &url::Url,
        hashes: &[String],
        credential: Option<&str>,
    ) -> Result<Self, PullError> {
        let host = url
            .host_str()
            .ok_or_else(|| PullError::Url(url.to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(443);
        let addr: SocketAddr = tokio::time::timeout(
            PULL_START_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| PullError::Timeout("the DNS lookup"))?
        .map_err(|e| PullError::Connect(e.to_string()))?
        .next()
        .ok_or_else(|| PullError::Connect(format!("{host} has no address")))?;
        let config = client_config(hashes)?;
        let bind: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint =
            quinn::Endpoint::client(bind).map_err(|e| PullError::Connect(e.to_string()))?;
        let connecting = endpoint
            .connect_with(config, addr, &host)
            .map_err(|e| PullError::Connect(e.to_string()))?;
        let conn = tokio::time::timeout(PULL_START_TIMEOUT, connecting)
            .await
            .map_err(|_| PullError::Timeout("the QUIC handshake"))?
            .map_err(|e| PullError::Connect(e.to_string()))?;
        let mut request = web_transport_quinn::proto::ConnectRequest::new(url.clone())
            .with_protocols(moq_net::ALPNS.iter().map(|a| (*a).to_owned()));
        if let Some(c) = credential {
            let value = http::HeaderValue::from_str(c).map_err(|_| {
                PullError::Connect("the edge credential is not a header value".into())
            })?;
            request = request.with_header(
                http::HeaderName::from_static(livestack_tokens::EDGE_CREDENTIAL_HEADER),
                value,
            );
        }
        let session = tokio::time::timeout(
            PULL_START_TIMEOUT,
            web_transport_quinn::Session::connect(conn, request),
        )
        .await
        .map_err(|_| PullError::Timeout("the WebTransport CONNECT"))?
        .map_err(|e| PullError::Connect(e.to_string()))?;
        let (origin, driver) = moq_net::origin::Producer::new(moq_net::origin::Config::default());
        let origin_task = tokio::spawn(moq_net::time::run(driver));
        let setup = tokio::time::timeout(
            PULL_START_TIMEOUT,
            moq_net::Client::new()
                .with_subscriber(origin.clone())
                .connect(std::time::Instant::now(), session),
        )
        .await;
        let (session, driver) = match setup {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                origin_task.abort();
                return Err(PullError::Moq(e));
            }
            Err(_) => {
                origin_task.abort();
                return Err(PullError::Timeout("the MoQ SETUP"));
            }
        };
        let session_task = tokio::spawn(moq_net::time::run(driver));
        Ok(Self {
            origin,
            _session: session,
            tasks: [origin_task, session_task],
            _endpoint: endpoint,
        })
    }
}

/// The QUIC client configuration for a relay session: ALPN `h3`, the
/// holder's certificate pinned by `hashes`, or the system roots.
fn client_config(hashes: &[String]) -> Result<quinn::ClientConfig, PullError> {
    let pinned = tls::PinnedCertificates::new(hashes.iter().map(String::as_str));
    let result = if pinned.is_empty() {
        tls::quic_client_config_with_roots(&[b"h3"])
    } else {
        tls::quic_client_config(pinned, &[b"h3"])
    };
    result.map_err(|e| PullError::Connect(e.to_string()))
}

/// The next catalog of the relay broadcast.
async fn next_catalog(track: &mut moq_net::track::Subscriber) -> Result<Catalog, PullError> {
    loop {
        let mut group = track
            .recv_group()
            .await
            .map_err(PullError::Moq)?
            .ok_or_else(|| PullError::Catalog("the catalog track ended".into()))?;
        if let Some(frame) = group.read_frame().await.map_err(PullError::Moq)? {
            return Catalog::decode(&frame.payload).map_err(|e| PullError::Catalog(e.to_string()));
        }
    }
}

/// Reads relay track `id` into `events` until it ends: a parameter change
/// becomes a `Track` event, a missing group (dropped upstream) a `Loss`.
async fn read_track(
    broadcast: moq_net::broadcast::Consumer,
    id: u32,
    events: mpsc::Sender<MediaEvent>,
    metrics: Arc<Metrics>,
) {
    let track = match broadcast.track(&relay_track::track_name(id)) {
        Ok(t) => t,
        Err(e) => {
            warn!(track = id, error = %e, "relay track unavailable");
            return;
        }
    };
    let mut track = match track
        .subscribe(moq_net::track::Subscription::default())
        .await
    {
        Ok(t) => t.ordered(),
        Err(e) => {
            warn!(track = id, error = %e, "relay track subscription refused");
            return;
        }
    };
    let mut last: Option<u64> = None;
    let mut params: Option<TrackParams> = None;
    let mut refused_logged = false;
    let mut refused = |what: &str, e: &dyn std::fmt::Display| {
        metrics.relay_frames_refused.inc();
        if !refused_logged {
            warn!(track = id, error = %e, "relayed {what} refused");
            refused_logged = true;
        }
    };
    while let Ok(Some(mut group)) = track.next_group().await {
        if last.is_some_and(|l| group.sequence != l + 1)
            && events.send(MediaEvent::Loss { id }).await.is_err()
        {
            return;
        }
        last = Some(group.sequence);
        let first = match group.read_frame().await {
            Ok(Some(f)) => f,
            _ => continue,
        };
        match relay_track::decode_params(&first.payload) {
            Ok(p) if params.as_ref() == Some(&p) => {}
            Ok(p) => {
                params = Some(p.clone());
                if events
                    .send(MediaEvent::Track { id, params: p })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                refused("parameter record", &e);
                continue;
            }
        }
        loop {
            let ev = match group.read_frame().await {
                Ok(Some(f)) => match relay_track::decode_frame(f.payload) {
                    Ok(frame) => MediaEvent::Frame { id, frame },
                    Err(e) => {
                        refused("frame", &e);
                        MediaEvent::Loss { id }
                    }
                },
                Ok(None) => break,
                // The group was cut (dropped upstream, reset).
                Err(_) => MediaEvent::Loss { id },
            };
            let stop = matches!(ev, MediaEvent::Loss { .. });
            if events.send(ev).await.is_err() {
                return;
            }
            if stop {
                break;
            }
        }
    }
}
