//! Media over QUIC egress: every broadcast the origin ingests, served to
//! MoQ subscribers over WebTransport (`https://HOST:PORT/moq`) and raw QUIC
//! (the MoQ ALPNs) on the `--webtransport` UDP port.
//!
//! # Wire protocol
//!
//! The wire protocol is `moq-net` 0.3.18's: it negotiates **moq-lite**
//! (`moq-lite-06` … `moq-lite-03`, and the legacy `moql`) and the **IETF
//! MoQ Transport** drafts 14–22 (`moqt-22` … `moqt-15`, `moq-00` for draft
//! 14), by QUIC ALPN on raw QUIC and by WebTransport subprotocol
//! (`WT-Available-Protocols`, the client's offer; the server picks its
//! most preferred) over WebTransport. The media format is `hang` 0.21.19:
//! a `catalog.json` track describing the renditions (WebCodecs codec
//! strings and decoder configurations) and one track per rendition in the
//! legacy container (a varint timestamp in microseconds, then the codec
//! payload), which the `@moq/watch` web player reads.
//!
//! # Mapping of our media model
//!
//! A broadcast `NAME` (stream `live/NAME`) is the MoQ broadcast path
//! `NAME`. Each track of the ingest is a MoQ track named as its LL-HLS
//! rendition (`video`, `audio`, then `video1`, `audio1`, …); a video group
//! starts at each keyframe (a late subscriber starts there), an audio group
//! every [`AUDIO_GROUP`] of media time. Frames are the ingest's access
//! units as they are (AVCC/HVCC length-prefixed NAL units with the `avcC`/
//! `hvcC` record as the catalog's `description`; raw AAC with its
//! AudioSpecificConfig), timestamped with their presentation time.
//!
//! Each broadcast is fed by one consumer of the media core's generic relay
//! ([`crate::fanout`]), the same the LL-HLS packager reads; if that
//! consumer falls behind it skips to the newest group of every track (never
//! slowing the ingest), counted in `livestack_origin_moq_groups_skipped`.
//! moq-net then fans the tracks out to every session: a subscriber takes
//! the live edge, and one that cannot keep up has whole older groups
//! dropped for it (never partial ones, never slowing the publisher or the
//! others). Groups moq-net skips before sending, because they aged past a
//! subscriber's budget, are counted in
//! `livestack_origin_moq_subscriber_groups_dropped`; groups a stalled
//! subscriber's own moq-net drops on resuming are not visible here.
//!
//! # Publishing
//!
//! A session may also publish: what it announces is ingested as a stream
//! of this origin ([`crate::moq_ingest`]), admitted like an SRT publish.
//!
//! # Access
//!
//! Streams anyone may play are published into the `open` origin, the
//! others (every stream on a closed origin) into the `keyed` one
//! ([`Origins`]). A session without a token (raw QUIC, or WebTransport
//! without `?token=`) is served from `open`. A WebTransport session with
//! `?token=T` is served through a session-local gate: each
//! broadcast it asks for is authorized with `T` as an LL-HLS request
//! would be (a play stream key, or a session token the edge minted for
//! this node, see [`Node::authorize_play`]) and refused with
//! `Unauthorized` otherwise. WebTransport sessions must ask for `/moq`, or
//! for [`RELAY_PATH`](crate::relay::RELAY_PATH) (other origins pulling a
//! stream, see [`crate::relay`]; 401 without the edge credential when one
//! is configured); anything else is refused with 404.
//!
//! # Limits
//!
//! The HTTP listeners' [`ListenerLimits`]: connections per listener and per
//! address (refused before the handshake), the QUIC handshake within
//! `tls_handshake_timeout`, the WebTransport CONNECT and the MoQ SETUP
//! each within `header_read_timeout`; at most `max_h2_streams` concurrent
//! bidirectional streams per connection (control and subscriptions) and
//! [`MAX_UNI_STREAMS`] unidirectional ones;
//! [`QUIC_IDLE_TIMEOUT`](crate::tls::QUIC_IDLE_TIMEOUT) without a
//! packet closes a connection.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use hang::catalog::{AudioConfig, Container, PRIORITY, VideoConfig};
use livestack_listener::{Admission, ClientAddr, ListenerLimits};
use livestack_media::model::{AudioParams, Frame, Timescale, TrackParams, VideoParams};
use tracing::{debug, warn};

use crate::{
    cluster::Node,
    fanout::{BroadcastSubscriber, MediaEvent, Received},
    metrics::Metrics,
    streams::{Egress, Source},
};

/// Media time an audio group spans at most: a late subscriber's audio
/// starts at most this far behind the live edge.
pub const AUDIO_GROUP: Duration = Duration::from_millis(500);

/// Unidirectional streams a peer may have open at once: moq-lite opens one
/// per group it sends (a publishing client); HTTP/3 needs three for
/// WebTransport.
pub const MAX_UNI_STREAMS: u32 = 1024;

/// The WebTransport path of MoQ sessions.
pub const WEBTRANSPORT_PATH: &str = "/moq";

/// The ALPN of WebTransport over HTTP/3 (RFC 9114 §3.1).
const ALPN_H3: &str = "h3";

/// The MoQ egress: publishes every broadcast into the node's MoQ origins,
/// `open` for the streams anyone may play, `keyed` for the others.
#[derive(Clone)]
pub struct MoqEgress {
    open: moq_net::origin::Producer,
    keyed: moq_net::origin::Producer,
    node: Arc<Node>,
    closed: bool,
    metrics: Arc<Metrics>,
}

impl MoqEgress {
    /// An egress publishing into `open` and `keyed`; `closed` as
    /// [`AccessConfig::closed`](crate::config::AccessConfig::closed) (no
    /// stream is open then).
    pub fn new(
        open: moq_net::origin::Producer,
        keyed: moq_net::origin::Producer,
        node: Arc<Node>,
        closed: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            open,
            keyed,
            node,
            closed,
            metrics,
        }
    }
}

impl std::fmt::Debug for MoqEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoqEgress")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Egress for MoqEgress {
    fn broadcast_started(
        &self,
        name: &str,
        session: u64,
        _source: &Source,
        media: &BroadcastSubscriber,
    ) {
        let this = self.clone();
        let name = name.to_owned();
        let media = media.clone();
        tokio::spawn(async move {
            let open = !this.closed && this.node.authorize_play(&name, None).await.is_ok();
            let origin = if open {
                &this.open
            } else {
                debug!(stream = %name, "offered over MoQ to token holders only");
                &this.keyed
            };
            let Some(broadcast) = create_broadcast(origin, &name).await else {
                return;
            };
            debug!(stream = %name, session, "offered over MoQ");
            drive(&name, media, Bridge::new(broadcast, this.metrics.clone())).await;
        });
    }
}

/// The MoQ broadcast at path `name`, waiting up to a second for the
/// previous publisher session's broadcast of the same name to close.
pub(crate) async fn create_broadcast(
    origin: &moq_net::origin::Producer,
    name: &str,
) -> Option<moq_net::broadcast::Producer> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match origin.create_broadcast(name) {
            Ok(b) => return Some(b),
            Err(e) if Instant::now() >= deadline => {
                warn!(stream = %name, error = %e, "cannot offer the stream over MoQ");
                return None;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One ingest track as a MoQ track.
struct TrackOut {
    /// The MoQ track name (the LL-HLS rendition name).
    name: String,
    track: moq_net::track::Producer,
    /// The group being written, with the media time it started at.
    group: Option<(moq_net::group::Producer, i64)>,
    video: bool,
}

/// Feeds one MoQ broadcast from one relay consumer.
struct Bridge {
    broadcast: moq_net::broadcast::Producer,
    catalog: Option<moq_json::snapshot::Producer<hang::Catalog>>,
    description: hang::Catalog,
    tracks: BTreeMap<u32, TrackOut>,
    announced: bool,
    metrics: Arc<Metrics>,
}

impl Bridge {
    fn new(broadcast: moq_net::broadcast::Producer, metrics: Arc<Metrics>) -> Self {
        Self {
            broadcast,
            catalog: None,
            description: hang::Catalog::default(),
            tracks: BTreeMap::new(),
            announced: false,
            metrics,
        }
    }

    /// A track's (new) parameters: creates the MoQ track and (re)writes the
    /// catalog.
    fn track(&mut self, id: u32, params: &TrackParams) -> Result<(), moq_net::Error> {
        let video = params.is_video();
        let name = match self.tracks.get(&id) {
            Some(t) => t.name.clone(),
            None => {
                let kind = if video { "video" } else { "audio" };
                let n = self.tracks.values().filter(|t| t.video == video).count();
                let name = if n == 0 {
                    kind.to_owned()
                } else {
                    format!("{kind}{n}")
                };
                let priority = if video {
                    PRIORITY.video
                } else {
                    PRIORITY.audio
                };
                let track = self
                    .broadcast
                    .create_track(name.as_str(), hang::container::track_info(priority))?;
                self.tracks.insert(
                    id,
                    TrackOut {
                        name: name.clone(),
                        track,
                        group: None,
                        video,
                    },
                );
                name
            }
        };
        match params {
            TrackParams::Video(v) => match video_config(v) {
                Some(c) => {
                    let _ = self.description.video.insert(&name, c);
                }
                None => warn!(codec = %v.codec_string, "video codec unknown to the MoQ catalog"),
            },
            TrackParams::Audio(a) => match audio_config(a) {
                Some(c) => {
                    let _ = self.description.audio.insert(&name, c);
                }
                None => warn!(codec = %a.codec_string, "audio codec unknown to the MoQ catalog"),
            },
        }
        if self.catalog.is_none() {
            let track = self.broadcast.create_track(
                hang::Catalog::DEFAULT_NAME,
                hang::Catalog::default_track_info(),
            )?;
            self.catalog = Some(moq_json::snapshot::Producer::new(track, Default::default()));
        }
        if let Some(catalog) = &mut self.catalog
            && let Err(e) = catalog.update(&self.description)
        {
            warn!(error = %e, "MoQ catalog not updated");
        }
        if !self.announced {
            self.broadcast.announce(moq_net::origin::Route::default())?;
            self.announced = true;
        }
        Ok(())
    }

    /// Writes one frame: a video keyframe (or an audio frame past
    /// [`AUDIO_GROUP`]) starts a group; video frames before the first
    /// keyframe of a group are dropped (undecodable).
    fn frame(&mut self, id: u32, frame: Frame) -> Result<(), BridgeError> {
        let Some(t) = self.tracks.get_mut(&id) else {
            return Ok(());
        };
        let micros = frame
            .pts
            .rebase(MICROS)
            .map_err(|_| BridgeError::Time)?
            .ticks();
        let micros = u64::try_from(micros).map_err(|_| BridgeError::Time)?;
        let starts_group = if t.video {
            frame.keyframe
        } else {
            let span = i64::try_from(AUDIO_GROUP.as_micros()).unwrap_or(i64::MAX);
            t.group
                .as_ref()
                .is_none_or(|(_, start)| micros as i64 - *start >= span)
        };
        if starts_group {
            finish_group(t);
            let group = t.track.append_group().map_err(BridgeError::Moq)?;
            t.group = Some((group, micros as i64));
        }
        let Some((group, _)) = t.group.as_mut() else {
            // Mid-GOP after a loss or a skip: wait for the next keyframe.
            return Ok(());
        };
        hang::container::Frame {
            timestamp: moq_net::Timestamp::from_micros(micros).map_err(|_| BridgeError::Time)?,
            payload: frame.data,
        }
        .write_to(group)
        .map_err(BridgeError::Hang)
    }

    /// Ends every track and the broadcast.
    fn finish_all(mut self) {
        for t in self.tracks.values_mut() {
            finish_group(t);
            let _ = t.track.finish();
        }
        if let Some(mut catalog) = self.catalog.take() {
            let _ = catalog.finish();
        }
        self.broadcast.close();
    }
}

/// Writes one broadcast's tracks into MoQ groups: the MoQ egress's hang
/// tracks ([`Bridge`]) and the relay's ([`crate::relay`]). Fed by
/// [`drive`].
pub(crate) trait GroupWriter {
    /// What the logs call its tracks and frames.
    const WHAT: &'static str;
    /// Track `id` has (new) parameters.
    fn track(&mut self, id: u32, params: &TrackParams) -> Result<(), String>;
    /// A frame of track `id`.
    fn frame(&mut self, id: u32, frame: Frame) -> Result<(), String>;
    /// Ends the open group of track `id`, or of every track (`None`): the
    /// next frame must start a group at a keyframe.
    fn end_group(&mut self, id: Option<u32>);
    /// The relay consumer skipped `groups` groups to catch up.
    fn skipped(&mut self, groups: u64);
    /// Ends every track and the broadcast.
    fn finish(self);
}

/// Feeds `writer` from a consumer of `media` until the broadcast ends.
pub(crate) async fn drive<W: GroupWriter>(name: &str, media: BroadcastSubscriber, mut writer: W) {
    let mut consumer = media.subscribe();
    drop(media);
    loop {
        match consumer.recv().await {
            Received::Event(MediaEvent::Track { id, params }) => {
                if let Err(e) = writer.track(id, &params) {
                    warn!(stream = %name, error = %e, "{} track refused", W::WHAT);
                }
            }
            Received::Event(MediaEvent::Frame { id, frame }) => {
                if let Err(e) = writer.frame(id, frame) {
                    debug!(stream = %name, error = %e, "{} frame dropped", W::WHAT);
                }
            }
            Received::Event(MediaEvent::Loss { id }) => writer.end_group(Some(id)),
            Received::Skipped { groups, .. } => {
                writer.skipped(groups);
                writer.end_group(None);
            }
            Received::Event(MediaEvent::End) | Received::Closed => break,
        }
    }
    writer.finish();
}

impl GroupWriter for Bridge {
    const WHAT: &'static str = "MoQ";

    fn track(&mut self, id: u32, params: &TrackParams) -> Result<(), String> {
        Bridge::track(self, id, params).map_err(|e| e.to_string())
    }

    fn frame(&mut self, id: u32, frame: Frame) -> Result<(), String> {
        Bridge::frame(self, id, frame).map_err(|e| e.to_string())
    }

    fn end_group(&mut self, id: Option<u32>) {
        match id {
            Some(id) => self.tracks.get_mut(&id).into_iter().for_each(finish_group),
            None => self.tracks.values_mut().for_each(finish_group),
        }
    }

    fn skipped(&mut self, groups: u64) {
        self.metrics.moq_groups_skipped.inc_by(groups);
    }

    fn finish(self) {
        self.finish_all();
    }
}

/// Why a frame was not written.
#[derive(Debug, thiserror::Error)]
enum BridgeError {
    #[error("timestamp outside the MoQ range")]
    Time,
    #[error("moq: {0}")]
    Moq(moq_net::Error),
    #[error("hang: {0}")]
    Hang(hang::Error),
}

/// The hang legacy container's clock: microseconds.
pub(crate) const MICROS: Timescale = match Timescale::new(1_000_000) {
    Some(t) => t,
    None => panic!("1 MHz is a timescale"),
};

fn finish_group(t: &mut TrackOut) {
    if let Some((group, _)) = t.group.take() {
        let _ = group.finish();
    }
}

/// The catalog entry of a video track (WebCodecs `codec` string and
/// `description` = the decoder configuration record).
fn video_config(v: &VideoParams) -> Option<VideoConfig> {
    let codec: hang::catalog::VideoCodec = v.codec_string.parse().ok()?;
    let mut c = VideoConfig::new(codec);
    c.description = Some(v.decoder_config.clone());
    c.coded_width = Some(v.width);
    c.coded_height = Some(v.height);
    c.framerate = v
        .frame_rate
        .filter(|(_, d)| *d != 0)
        .map(|(n, d)| f64::from(n) / f64::from(d));
    c.container = Container::Legacy;
    Some(c)
}

/// The catalog entry of an audio track (`description` = the
/// AudioSpecificConfig for AAC).
fn audio_config(a: &AudioParams) -> Option<AudioConfig> {
    let codec: hang::catalog::AudioCodec = a.codec_string.parse().ok()?;
    let mut c = AudioConfig::new(codec, a.sample_rate.get(), u32::from(a.channels));
    c.description = Some(Bytes::clone(&a.decoder_config));
    c.container = Container::Legacy;
    Some(c)
}

/// The QUIC endpoint configuration: ALPN `h3` (WebTransport) and every MoQ
/// ALPN, TLS 1.3, no 0-RTT, the limits of the module docs, with server
/// keep-alives (a subscriber may sit idle waiting for a broadcast).
///
/// # Errors
/// [`TlsError`](crate::tls::TlsError) when rustls refuses the certificate
/// or the configuration cannot carry QUIC.
pub fn server_config(
    ck: crate::tls::CertAndKey,
    limits: &ListenerLimits,
) -> Result<quinn::ServerConfig, crate::tls::TlsError> {
    let alpn: Vec<&[u8]> = std::iter::once(ALPN_H3)
        .chain(moq_net::ALPNS.iter().copied())
        .map(str::as_bytes)
        .collect();
    let config = crate::tls::quic_server_config_with_alpn(ck, &alpn)?;
    Ok(crate::tls::with_quic_transport(
        config,
        limits,
        MAX_UNI_STREAMS,
        true,
    ))
}

/// What relay sessions ([`crate::relay::RELAY_PATH`]) are served.
#[derive(Clone)]
pub struct RelayAccess {
    /// The relay origin ([`crate::relay::RelayEgress`] publishes into it).
    pub origin: moq_net::origin::Producer,
    /// The edge credential a relay session must present, if configured.
    pub credential: Option<String>,
}

/// Accepts QUIC connections on `endpoint` and runs a MoQ session on each,
/// publishing from `origin` (WebTransport at [`WEBTRANSPORT_PATH`], raw
/// QUIC) or, for WebTransport sessions at the relay path, from `relay`,
/// until the task is dropped.
pub async fn serve(
    endpoint: quinn::Endpoint,
    origins: Origins,
    relay: Option<RelayAccess>,
    ingest: Option<Arc<crate::srt::IngestContext>>,
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
) {
    // moq-net's traffic counters: the groups it dropped for slow
    // subscribers are copied into the metrics once a second.
    let registry = moq_net::stats::Registry::new(moq_net::stats::Config::new());
    let tier = registry.tier(moq_net::stats::Tier::default());
    let dropped = metrics.moq_subscriber_groups_dropped.clone();
    let _counting = AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let stale: u64 = registry
                .snapshot()
                .traffic()
                .into_iter()
                .map(|(_, _, t)| t.stale.groups)
                .sum();
            dropped.set(i64::try_from(stale).unwrap_or(i64::MAX));
        }
    }));
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let Ok(admitted) = admission.admit(peer.ip()) else {
            incoming.refuse();
            continue;
        };
        let limits = *admission.limits();
        let origins = origins.clone();
        let relay = relay.clone();
        let ingest = ingest.clone();
        let metrics = metrics.clone();
        let stats = tier.session("");
        tokio::spawn(async move {
            let _admitted = admitted;
            let sides = Sides {
                origins,
                relay,
                ingest,
            };
            let outcome = session(incoming, peer, sides, stats, &limits, &metrics).await;
            let label = match &outcome {
                Ok(()) => "ended",
                Err(e) => e.label(),
            };
            metrics
                .moq_sessions
                .get_or_create(&vec![("outcome", label.to_owned())])
                .inc();
            if let Err(e) = outcome {
                debug!(peer = %ClientAddr::from(peer), error = %e, "MoQ session refused or failed");
            }
        });
    }
}

/// Answers a token session's broadcast requests: each path is authorized
/// with the session's `token` (a play stream key, or a session token the
/// edge minted for this node) as an LL-HLS request would be, then served
/// from the open or the keyed origin; refused with `Unauthorized`
/// otherwise.
async fn run_gate(requests: moq_net::origin::Dynamic, origins: Origins, token: String) {
    let open = origins.open.consume();
    let keyed = origins.keyed.consume();
    while let Ok(request) = kio::wait(|w| requests.poll_requested_broadcast(w)).await {
        let name = request.path().as_str().to_owned();
        let allowed = if origins.closed {
            origins
                .node
                .authorize_play_strict(&name, Some(&token))
                .await
        } else {
            origins.node.authorize_play(&name, Some(&token)).await
        };
        if let Err(e) = allowed {
            debug!(stream = %name, reason = %e, "MoQ subscription refused");
            request.reject(moq_net::Error::Unauthorized);
            continue;
        }
        let found = match open.request_broadcast(name.as_str()).await {
            Ok(b) => Ok(b),
            Err(_) => keyed.request_broadcast(name.as_str()).await,
        };
        match found {
            Ok(b) => request.accept(b),
            Err(e) => request.reject(e),
        }
    }
}

/// Counts one in a gauge while it lives.
struct GaugeGuard(prometheus_client::metrics::gauge::Gauge);

impl GaugeGuard {
    fn new(g: &prometheus_client::metrics::gauge::Gauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a MoQ session did not start or ended in error.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("QUIC handshake: {0}")]
    Handshake(String),
    #[error("timed out during {0}")]
    Timeout(&'static str),
    #[error("ALPN {0:?} is neither h3 nor a MoQ version")]
    Alpn(Option<String>),
    #[error("WebTransport: {0}")]
    WebTransport(String),
    #[error("WebTransport path {0:?} is not /moq (or /relay)")]
    Path(String),
    #[error("relay session without the edge credential")]
    Unauthorized,
    #[error("MoQ: {0}")]
    Moq(moq_net::Error),
}

impl SessionError {
    fn label(&self) -> &'static str {
        match self {
            SessionError::Handshake(_) => "handshake_failed",
            SessionError::Timeout(_) => "timeout",
            SessionError::Alpn(_) => "bad_alpn",
            SessionError::WebTransport(_) => "bad_webtransport",
            SessionError::Path(_) => "not_found",
            SessionError::Unauthorized => "unauthorized",
            SessionError::Moq(_) => "moq_error",
        }
    }
}

/// One connection: QUIC handshake, WebTransport CONNECT (ALPN `h3`) or raw
/// QUIC (a MoQ ALPN), MoQ SETUP, then the session until it ends.
/// The MoQ origins subscribers are served from.
#[derive(Clone)]
pub struct Origins {
    /// Streams anyone may play: what sessions without a token see.
    pub open: moq_net::origin::Producer,
    /// Streams that need a play token (all of them on a closed origin).
    pub keyed: moq_net::origin::Producer,
    /// Authorizes token sessions' requests.
    pub node: Arc<Node>,
    /// [`AccessConfig::closed`](crate::config::AccessConfig::closed).
    pub closed: bool,
}

/// What a session may be served from and publish into.
struct Sides {
    /// The public MoQ origins.
    origins: Origins,
    /// Relay sessions' origin and credential.
    relay: Option<RelayAccess>,
    /// Where publishes go ([`crate::moq_ingest`]); `None`: not accepted.
    ingest: Option<Arc<crate::srt::IngestContext>>,
}

async fn session(
    incoming: quinn::Incoming,
    peer: SocketAddr,
    sides: Sides,
    stats: moq_net::stats::Session,
    limits: &ListenerLimits,
    metrics: &Metrics,
) -> Result<(), SessionError> {
    let Sides {
        origins,
        relay,
        mut ingest,
    } = sides;
    let mut origin = origins.open.clone();
    let mut relay_session = None;
    let mut token: Option<String> = None;
    let conn = tokio::time::timeout(limits.tls_handshake_timeout, incoming)
        .await
        .map_err(|_| SessionError::Timeout("the QUIC handshake"))?
        .map_err(|e| SessionError::Handshake(e.to_string()))?;
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol)
        .map(|p| String::from_utf8_lossy(&p).into_owned());
    let transport = match alpn.as_deref() {
        Some(ALPN_H3) => {
            let request = tokio::time::timeout(
                limits.header_read_timeout,
                web_transport_quinn::Request::accept(conn),
            )
            .await
            .map_err(|_| SessionError::Timeout("the WebTransport CONNECT"))?
            .map_err(|e| SessionError::WebTransport(e.to_string()))?;
            let path = request.url.path().to_owned();
            match (path.as_str(), &relay) {
                (WEBTRANSPORT_PATH, _) => {}
                (crate::relay::RELAY_PATH, Some(r)) => {
                    let presented = request
                        .headers
                        .get(livestack_tokens::EDGE_CREDENTIAL_HEADER)
                        .map(|v| v.as_bytes());
                    let allowed = match (&r.credential, presented) {
                        (None, _) => true,
                        (Some(c), Some(p)) => {
                            livestack_tokens::edge_credential_matches(p, c.as_bytes())
                        }
                        (Some(_), None) => false,
                    };
                    if !allowed {
                        let _ = request.reject(http::StatusCode::UNAUTHORIZED).await;
                        return Err(SessionError::Unauthorized);
                    }
                    origin = r.origin.clone();
                    // Relay sessions only read.
                    ingest = None;
                    relay_session = Some(GaugeGuard::new(&metrics.relay_sessions));
                }
                _ => {
                    let _ = request.reject(http::StatusCode::NOT_FOUND).await;
                    return Err(SessionError::Path(path));
                }
            }
            token = livestack_tokens::request_token(request.url.query(), None)
                .map(std::borrow::Cow::into_owned);
            // The subprotocol: our most preferred MoQ version the client
            // offers (none offered: moq-net negotiates in its SETUP).
            let chosen = moq_net::ALPNS
                .iter()
                .find(|a| request.protocols.iter().any(|p| p == *a))
                .copied();
            let mut response = web_transport_quinn::proto::ConnectResponse::OK;
            if let Some(p) = chosen {
                response = response.with_protocol(p);
            }
            request
                .respond(response)
                .await
                .map_err(|e| SessionError::WebTransport(e.to_string()))?
        }
        Some(a) if moq_net::ALPNS.contains(&a) => web_transport_quinn::Session::raw(conn),
        other => {
            conn.close(0u32.into(), b"unsupported ALPN");
            return Err(SessionError::Alpn(other.map(str::to_owned)));
        }
    };
    // A session with a token (not a relay session) sees what the token
    // opens, broadcast by broadcast, through a session-local gate.
    let mut _gating = None;
    if relay_session.is_none()
        && let Some(token) = token.clone()
    {
        let (gate, driver) = moq_net::origin::Producer::new(moq_net::origin::Config::default());
        let requests = gate
            .dynamic("", moq_net::origin::Route::default())
            .map_err(SessionError::Moq)?;
        _gating = Some((
            AbortOnDrop(tokio::spawn(async move {
                let _ = moq_net::time::run(driver).await;
            })),
            AbortOnDrop(tokio::spawn(run_gate(requests, origins, token))),
        ));
        origin = gate;
    }
    // What the client publishes lands in a session-local origin; the
    // ingest admits each announced broadcast on its own.
    let mut server = moq_net::Server::new()
        .with_publisher(&origin)
        .with_stats(stats);
    let mut _ingesting = None;
    if let Some(ctx) = ingest {
        let (announced, driver) =
            moq_net::origin::Producer::new(moq_net::origin::Config::default());
        server = server.with_subscriber(announced.clone());
        _ingesting = Some((
            AbortOnDrop(tokio::spawn(async move {
                let _ = moq_net::time::run(driver).await;
            })),
            AbortOnDrop(tokio::spawn(crate::moq_ingest::run(announced, token, ctx))),
        ));
    }
    let handshake = tokio::time::timeout(
        limits.header_read_timeout,
        server.accept_request(std::time::Instant::now(), transport),
    )
    .await
    .map_err(|_| SessionError::Timeout("the MoQ SETUP"))?
    .map_err(SessionError::Moq)?;
    let (session, driver) = handshake.ok().await.map_err(SessionError::Moq)?;
    debug!(peer = %ClientAddr::from(peer), version = %session.version(), "MoQ session");
    let end = moq_net::time::run(driver).await;
    drop(session);
    drop(relay_session);
    match end {
        moq_net::Error::Closed | moq_net::Error::Cancel => Ok(()),
        e => Err(SessionError::Moq(e)),
    }
}
