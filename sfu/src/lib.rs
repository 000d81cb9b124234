//! WebRTC for livestack, on str0m (sans-IO WebRTC): WHIP ingest
//! (RFC 9725) today; WHEP playback and rooms build on the same loop.
//!
//! # Shape
//!
//! One UDP socket carries every session (ICE-lite: the server only
//! answers connectivity checks; browsers reach it as a host or
//! peer-reflexive candidate). One task owns every session's
//! [`str0m::Rtc`] and keeps str0m's contract: each mutation (a packet, a
//! timeout, a new offer) is followed by a complete drain of its output.
//! A datagram goes to the session its source address was last
//! accepted by (a map, one lookup); only a datagram from an unknown
//! address is offered to every session's `Rtc::accepts` (the first STUN
//! check of a new peer). After a mutation, only the sessions it touched are
//! drained; each session's next timeout waits in a timer heap. A session's
//! consecutive datagrams of one size (a video frame's packets) leave in one
//! `sendmsg` with UDP GSO where Linux offers it.
//!
//! # Media
//!
//! Only H.264 (packetization mode 1) and Opus are negotiated. Received
//! media leaves as the media model's events ([`IngestEvent`]): H.264
//! access units through [`AccessUnitIngest`] (parameter sets out of band,
//! 4-byte length prefixes, frames from the first keyframe) on the 90 kHz
//! RTP clock; Opus frames (48 kHz, 20 ms) as they arrive. WebRTC sends no
//! B-frames, so decoding time = presentation time.
//!
//! Viewers (WHEP) are fed per broadcast: the caller hands each frame once
//! to a [`Feed`], and the session task writes it to every viewer playing
//! that feed (the payload shared, not copied per viewer). A feed keeps the
//! frames since its last video keyframe, so a viewer that connects
//! mid-GOP starts at once from that keyframe.
//!
//! # Limits
//!
//! [`Limits::max_sessions`] sessions per node (default
//! [`DEFAULT_MAX_SESSIONS`]); an offer larger than [`MAX_OFFER_BYTES`] is
//! refused; a session whose ICE disconnects ends.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Once,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use livestack_media::{
    ingest::{AccessUnitIngest, IngestEvent},
    model::{AudioCodec, AudioParams, Frame, MediaTime, Timescale, TrackParams, VideoCodec},
};
use str0m::{
    Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig,
    bwe::{Bitrate, BweKind},
    change::SdpOffer,
    channel::ChannelId,
    format::Codec,
    media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Pt, Rid},
    net::{Protocol, Receive},
};
use tokio::{
    net::UdpSocket,
    sync::{mpsc, oneshot},
};
use tracing::{debug, info, warn};

mod send;
use send::Batcher;

/// Sessions (publishers and viewers) one node holds at most unless
/// [`Limits::max_sessions`] says otherwise: about what one core serves.
/// One task drives every session, so the SFU uses one core whatever the
/// machine has; in `whep-load` it forwarded a 1 Mbit/s H.264 + Opus
/// stream to 500 viewers without loss (95 % of the core) and at 750 every
/// viewer fell behind. Beyond its core, one more viewer degrades all of
/// them, so the cap protects those already playing.
pub const DEFAULT_MAX_SESSIONS: usize = 512;

/// The endpoint's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions (publishers and viewers) held at once; one more offer is
    /// refused with [`WebRtcError::Full`]. Default
    /// [`DEFAULT_MAX_SESSIONS`]. Memory grows with it: a viewer session
    /// keeps its last 1,000 sent video packets for retransmission
    /// (str0m's send buffer), about 1.2 MB once full, whatever the bit
    /// rate. Raise it for streams well below 1 Mbit/s (the cost is per
    /// packet): `whep-load` in `origin/bench/RESULTS.md`.
    pub max_sessions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// Largest SDP offer accepted (bytes).
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// Track id of a WHIP publisher's video in the media model.
pub const VIDEO_TRACK: u32 = 1;

/// Track id of a WHIP publisher's audio in the media model.
pub const AUDIO_TRACK: u32 = 2;

/// Samples per Opus frame at 48 kHz (20 ms, browsers' default ptime).
const OPUS_FRAME: i64 = 960;

/// A session's number, unique on this node.
pub type SessionId = u64;

/// A feed's number, unique on this node.
pub type FeedId = u64;

/// Where a publisher's media (and data channel) goes.
pub trait MediaSink: Send + 'static {
    /// A track's parameters or a frame.
    fn event(&mut self, event: IngestEvent);
    /// The session ended (`reason`: `disconnected`, `closed`, `failed`,
    /// `timeout`: never connected within [`CONNECT_TIMEOUT`]).
    fn ended(&mut self, reason: &'static str);
    /// The peer opened its data channel (RFC 8831): text sent with
    /// [`WebRtc::send_text`] reaches it from now on.
    fn channel_open(&mut self) {}
    /// A text message the peer sent on its data channel (at most
    /// [`MAX_MESSAGE_BYTES`]; binary and larger messages are dropped).
    fn message(&mut self, _text: &str) {}
    /// The audio level of a received Opus packet, from the RFC 6464 header
    /// extension: dBov, `-127` (silence) ..= `0` (loudest).
    fn audio_level(&mut self, _dbov: i8) {}
}

/// Largest data-channel message passed on (bytes); RFC 8831 peers send
/// up to 64 KiB, chat and reactions need far less.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Messages kept for a peer whose data channel is not open yet, at most;
/// older ones are dropped first.
pub const MAX_PENDING_MESSAGES: usize = 64;

/// Text messages queued towards the session task at most.
pub const TEXT_QUEUE: usize = 1024;

/// How long a peer has to connect after its offer was answered; a session
/// still unconnected then ends (`timeout`), so offers that are never
/// followed by a connection hold no session, stream name or placement.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Candidates one trickle ICE fragment may carry at most.
pub const MAX_FRAGMENT_CANDIDATES: usize = 32;

/// A trickle ICE or ICE restart SDP fragment (RFC 8840 §4.4, media type
/// `application/trickle-ice-sdpfrag`), as a WHIP/WHEP client PATCHes it
/// (RFC 9725 §4.3.1).
#[derive(Debug, Default)]
pub struct SdpFragment {
    /// `a=ice-ufrag`: the client's ICE username fragment (a new one is an
    /// ICE restart).
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd`.
    pub ice_pwd: Option<String>,
    /// The `a=candidate` lines (RFC 8839 §5.1).
    pub candidates: Vec<Candidate>,
}

/// Parses an SDP fragment (fuzz target `trickle_sdpfrag`): `a=ice-ufrag`,
/// `a=ice-pwd` and `a=candidate` lines are read; `m=`, `a=mid`,
/// `a=end-of-candidates` and any other line are ignored.
///
/// # Errors
/// [`WebRtcError::BadOffer`]: larger than [`MAX_OFFER_BYTES`], more than
/// [`MAX_FRAGMENT_CANDIDATES`] candidates, or a candidate that does not
/// parse (the reason names it).
pub fn parse_sdpfrag(text: &str) -> Result<SdpFragment, WebRtcError> {
    if text.len() > MAX_OFFER_BYTES {
        return Err(WebRtcError::BadOffer("fragment too large".into()));
    }
    let mut fragment = SdpFragment::default();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            fragment.ice_ufrag = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            fragment.ice_pwd = Some(v.to_owned());
        } else if let Some(c) = line
            .strip_prefix("a=")
            .filter(|c| c.starts_with("candidate:"))
        {
            if fragment.candidates.len() >= MAX_FRAGMENT_CANDIDATES {
                return Err(WebRtcError::BadOffer(format!(
                    "more than {MAX_FRAGMENT_CANDIDATES} candidates"
                )));
            }
            let candidate = Candidate::from_sdp_string(c)
                .map_err(|e| WebRtcError::BadOffer(format!("candidate {c:?}: {e}")))?;
            fragment.candidates.push(candidate);
        }
    }
    Ok(fragment)
}

/// Why an offer was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The SDP does not parse or str0m refused it.
    #[error("bad SDP offer: {0}")]
    BadOffer(String),
    /// The offer has neither H.264 video nor Opus audio.
    #[error("the offer has neither H.264 video nor Opus audio")]
    UnsupportedCodecs,
    /// The node holds [`Limits::max_sessions`] sessions.
    #[error("this node holds as many WebRTC sessions as it may")]
    Full,
    /// The WebRTC task is gone.
    #[error("the WebRTC task is gone")]
    Gone,
}

/// A frame for viewer sessions, in the form RTP payloaders take; the
/// payload is shared by every viewer it is written to.
#[derive(Debug, Clone)]
pub enum OutFrame {
    /// One H.264 access unit in Annex B (start codes; parameter sets before
    /// an IDR), at a 90 kHz RTP time.
    Video {
        /// The access unit.
        data: Arc<[u8]>,
        /// Presentation time, 90 kHz ticks.
        rtp_time: u64,
        /// An IDR access unit (decoding can start here).
        keyframe: bool,
        /// The layer it belongs to (the broadcast's track id): a feed
        /// with several (simulcast) gives each viewer one at a time, the
        /// one its bandwidth estimate affords, switching at keyframes.
        layer: u32,
    },
    /// One Opus packet at a 48 kHz RTP time.
    Audio {
        /// The Opus packet.
        data: Arc<[u8]>,
        /// Presentation time, 48 kHz ticks.
        rtp_time: u64,
    },
}

impl OutFrame {
    fn is_keyframe(&self) -> bool {
        matches!(self, Self::Video { keyframe: true, .. })
    }

    fn layer(&self) -> Option<u32> {
        match self {
            Self::Video { layer, .. } => Some(*layer),
            Self::Audio { .. } => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Video { data, .. } | Self::Audio { data, .. } => data.len(),
        }
    }
}

/// Frames (of every feed) queued towards the session task at most; beyond,
/// [`Feed::send`] drops them. Each frame is queued once per broadcast, not
/// once per viewer: 4,096 frames are about 50 s of one broadcast at 30
/// video and 50 audio frames per second.
pub const MEDIA_QUEUE: usize = 4096;

/// Bytes of frames a feed keeps since its last video keyframe at most (for
/// viewers that connect mid-GOP); a longer GOP is not kept, and a viewer
/// then waits for the next keyframe.
pub const MAX_GOP_BYTES: usize = 8 << 20;

/// A broadcast's frames on their way to its viewers: each frame is handed
/// to the session task once and written there to every viewer that plays
/// this feed ([`WebRtc::play`] with [`Feed::id`]). Dropping it ends the
/// feed (its viewers stay connected and get nothing more).
#[derive(Debug)]
pub struct Feed {
    id: FeedId,
    media: mpsc::Sender<(FeedId, OutFrame)>,
    control: mpsc::UnboundedSender<FeedControl>,
    /// Layers whose video frame was dropped: each waits for its next
    /// keyframe.
    broken: Vec<u32>,
}

impl Feed {
    /// The feed's number, for [`WebRtc::play`].
    pub fn id(&self) -> FeedId {
        self.id
    }

    /// Queues `frame` for every viewer of the feed; false when it is
    /// dropped: the queue is full (the session task is behind), the task is
    /// gone, or it is a video frame after a dropped one (decoders need the
    /// next keyframe first).
    pub fn send(&mut self, frame: OutFrame) -> bool {
        let layer = frame.layer();
        if let Some(layer) = layer
            && self.broken.contains(&layer)
            && !frame.is_keyframe()
        {
            return false;
        }
        let sent = self.media.try_send((self.id, frame)).is_ok();
        if let Some(layer) = layer {
            self.broken.retain(|l| *l != layer);
            if !sent {
                self.broken.push(layer);
            }
        }
        sent
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // The task being gone is the only failure: nothing to end then.
        let _ = self.control.send(FeedControl::Close(self.id));
    }
}

/// A feed's start and end, in order with each other (and, the session
/// task reading this channel first, before the feed's frames).
#[derive(Debug)]
enum FeedControl {
    Open(FeedId),
    Close(FeedId),
}

/// A viewer session's handle: its readiness and its end.
#[derive(Debug)]
pub struct Viewer {
    /// The session.
    pub id: SessionId,
    ready: Option<oneshot::Receiver<()>>,
    ended: oneshot::Receiver<&'static str>,
}

impl Viewer {
    /// Resolves when the session is connected and its media negotiated
    /// (from then on it gets its feed's frames, starting with those since
    /// the last keyframe). At most `wait`; false if the session did not get
    /// there.
    pub async fn ready(&mut self, wait: Duration) -> bool {
        match self.ready.take() {
            Some(rx) => matches!(tokio::time::timeout(wait, rx).await, Ok(Ok(()))),
            None => true,
        }
    }

    /// Resolves when the session ends, with the reason.
    pub async fn ended(&mut self) -> &'static str {
        (&mut self.ended).await.unwrap_or("closed")
    }
}

enum Command {
    Play {
        offer: String,
        source: Option<SessionId>,
        feed: FeedId,
        ready: oneshot::Sender<()>,
        ended: oneshot::Sender<&'static str>,
        reply: oneshot::Sender<Result<(SessionId, String), WebRtcError>>,
    },
    Publish {
        offer: String,
        sink: Box<dyn MediaSink>,
        reply: oneshot::Sender<Result<(SessionId, String), WebRtcError>>,
    },
    Close {
        id: SessionId,
        reply: oneshot::Sender<bool>,
    },
    Candidates {
        id: SessionId,
        candidates: Vec<Candidate>,
        reply: oneshot::Sender<bool>,
    },
}

/// The WebRTC endpoint: its UDP socket and the task driving every session.
#[derive(Debug, Clone)]
pub struct WebRtc {
    commands: mpsc::Sender<Command>,
    media: mpsc::Sender<(FeedId, OutFrame)>,
    feed_control: mpsc::UnboundedSender<FeedControl>,
    next_feed: Arc<AtomicU64>,
    texts: mpsc::Sender<(SessionId, String)>,
    local: SocketAddr,
}

impl WebRtc {
    /// Binds UDP `addr` and starts the session task. `public_ip` is the
    /// address announced in answers, at the bound port (NAT, cloud); the
    /// bound address when `None` (then it must be a concrete IP clients
    /// reach).
    ///
    /// # Errors
    /// The bind error.
    pub async fn bind(
        addr: SocketAddr,
        public_ip: Option<IpAddr>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        install_crypto();
        let socket = UdpSocket::bind(addr).await?;
        // One socket takes every session's datagrams: a publisher's burst
        // arriving while the task writes a keyframe to many viewers must
        // not overflow the kernel's default (about 200 KB). The kernel caps
        // it at net.core.rmem_max.
        if let Err(e) = socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER) {
            warn!(error = %e, "WebRTC socket receive buffer not enlarged");
        }
        let bound = socket.local_addr()?;
        let announced = public_ip.map_or(bound, |ip| SocketAddr::new(ip, bound.port()));
        let (commands, rx) = mpsc::channel(64);
        let (media, media_rx) = mpsc::channel(MEDIA_QUEUE);
        let (feed_control, control_rx) = mpsc::unbounded_channel();
        let sfu = Sfu {
            socket,
            bound,
            announced,
            limits,
            sessions: HashMap::new(),
            routes: HashMap::new(),
            timers: BinaryHeap::new(),
            feeds: HashMap::new(),
            next_id: 1,
            keyframes_wanted: Vec::new(),
            scratch: Vec::new(),
            out: Batcher::new(),
        };
        let (texts, texts_rx) = mpsc::channel(TEXT_QUEUE);
        tokio::spawn(sfu.run(rx, media_rx, control_rx, texts_rx));
        Ok(Self {
            commands,
            media,
            feed_control,
            next_feed: Arc::new(AtomicU64::new(1)),
            texts,
            local: bound,
        })
    }

    /// A new feed: what one broadcast's viewers are sent.
    pub fn feed(&self) -> Feed {
        let id = self.next_feed.fetch_add(1, Ordering::Relaxed);
        // The task being gone is the only failure: the feed's frames then
        // go nowhere, like every other call's.
        let _ = self.feed_control.send(FeedControl::Open(id));
        Feed {
            id,
            media: self.media.clone(),
            control: self.feed_control.clone(),
            broken: Vec::new(),
        }
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Answers a publisher's `offer` (SDP text); its media goes to `sink`.
    /// Returns the session id and the SDP answer.
    ///
    /// # Errors
    /// [`WebRtcError`].
    pub async fn publish(
        &self,
        offer: &str,
        sink: Box<dyn MediaSink>,
    ) -> Result<(SessionId, String), WebRtcError> {
        if offer.len() > MAX_OFFER_BYTES {
            return Err(WebRtcError::BadOffer("offer too large".into()));
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Publish {
                offer: offer.to_owned(),
                sink,
                reply,
            })
            .await
            .map_err(|_| WebRtcError::Gone)?;
        answer.await.map_err(|_| WebRtcError::Gone)?
    }

    /// Answers a viewer's `offer` (WHEP): once connected, the session sends
    /// what `feed` ([`WebRtc::feed`]) is given; its keyframe requests (and
    /// its start) ask the WHIP publisher session `source` for a keyframe,
    /// when the stream comes from one. Returns the SDP answer too.
    ///
    /// # Errors
    /// [`WebRtcError`].
    pub async fn play(
        &self,
        offer: &str,
        source: Option<SessionId>,
        feed: FeedId,
    ) -> Result<(Viewer, String), WebRtcError> {
        if offer.len() > MAX_OFFER_BYTES {
            return Err(WebRtcError::BadOffer("offer too large".into()));
        }
        let (reply, answer) = oneshot::channel();
        let (ended_tx, ended) = oneshot::channel();
        let (ready_tx, ready) = oneshot::channel();
        self.commands
            .send(Command::Play {
                offer: offer.to_owned(),
                source,
                feed,
                ready: ready_tx,
                ended: ended_tx,
                reply,
            })
            .await
            .map_err(|_| WebRtcError::Gone)?;
        let (id, answer) = answer.await.map_err(|_| WebRtcError::Gone)??;
        Ok((
            Viewer {
                id,
                ready: Some(ready),
                ended,
            },
            answer,
        ))
    }

    /// Sends `text` on publisher session `id`'s data channel (kept until
    /// the channel opens, at most [`MAX_PENDING_MESSAGES`]); false when
    /// the queue towards the session task is full (the message is
    /// dropped) or the task is gone.
    pub fn send_text(&self, id: SessionId, text: String) -> bool {
        self.texts.try_send((id, text)).is_ok()
    }

    /// Adds trickled remote `candidates` to session `id`; false if
    /// unknown. (The server is ICE-lite: it answers the client's checks
    /// from wherever they come, so candidates only complete the picture.)
    pub async fn add_candidates(&self, id: SessionId, candidates: Vec<Candidate>) -> bool {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Candidates {
                id,
                candidates,
                reply,
            })
            .await
            .is_err()
        {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Ends session `id` (its sink is told `closed`); false if unknown.
    pub async fn close(&self, id: SessionId) -> bool {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Close { id, reply })
            .await
            .is_err()
        {
            return false;
        }
        done.await.unwrap_or(false)
    }
}

/// One publisher or viewer.
struct Session {
    id: SessionId,
    rtc: Rtc,
    role: Role,
    ended: Option<&'static str>,
    /// The timeout its last drain returned (what its entry in the timer
    /// heap is for).
    timeout: Instant,
    /// Remote addresses routed to it (removed from the routes at its end).
    remotes: Vec<SocketAddr>,
    /// Until when the peer may take to connect (ICE and DTLS); `None`
    /// once connected.
    connect_by: Option<Instant>,
}

/// Remote addresses one session keeps routed at most (ICE may use a few;
/// an older one is then looked up by `accepts` again).
const MAX_REMOTES: usize = 4;

enum Role {
    Publisher {
        sink: Box<dyn MediaSink>,
        /// Boxed: far larger than a viewer's state.
        /// Its video layers: one, or one per simulcast RID in the
        /// offer's order (RFC 8853).
        layers: Vec<Layer>,
        audio_announced: bool,
        /// The mid of the video it sends (keyframe requests go there).
        video_mid: Option<Mid>,
        /// When a keyframe was last asked of it.
        last_keyframe_request: Option<Instant>,
        /// Its data channel, once open.
        channel: Option<ChannelId>,
        /// Text for the channel before it opened.
        pending: VecDeque<String>,
    },
    Viewer {
        ended: Option<oneshot::Sender<&'static str>>,
        /// Told once connected with media negotiated.
        ready: Option<oneshot::Sender<()>>,
        connected: bool,
        video: Option<(Mid, Option<Pt>)>,
        audio: Option<(Mid, Option<Pt>)>,
        /// Video frames are dropped until a keyframe can be written.
        needs_keyframe: bool,
        /// The WHIP publisher session feeding it on this node, if any:
        /// its keyframe requests are forwarded there.
        source: Option<SessionId>,
        /// The viewer asked for a keyframe (PLI/FIR) or just connected.
        wants_keyframe: bool,
        /// The feed it plays.
        feed: FeedId,
        /// Connected with media negotiated and told so: it gets its feed's
        /// frames.
        live: bool,
        /// Just became ready: its feed's frames since the last keyframe are
        /// to be written to it.
        starting: bool,
        /// The video layer it gets now, and the one it switches to at that
        /// layer's next keyframe.
        layer: Option<u32>,
        target: Option<u32>,
        /// str0m's estimate of the bandwidth towards it (TWCC), bits per
        /// second.
        estimate: Option<u64>,
        /// The estimate changed: the layer is chosen again.
        reselect: bool,
    },
}

/// Simulcast layers taken from one publisher at most (more RIDs are
/// ignored).
pub const MAX_LAYERS: usize = 4;

/// The media model's track id of a publisher's video layer `index`: the
/// first (the only one without simulcast) is [`VIDEO_TRACK`], the others
/// follow [`AUDIO_TRACK`] (3, 4, 5).
pub fn layer_track(index: usize) -> u32 {
    match index {
        0 => VIDEO_TRACK,
        // At most MAX_LAYERS: no overflow.
        i => AUDIO_TRACK + i as u32,
    }
}

/// One video layer of a publisher: its RID (none without simulcast) and
/// its access-unit assembly into its own track.
struct Layer {
    rid: Option<Rid>,
    /// Boxed: large.
    ingest: Box<AccessUnitIngest>,
    /// Frames were lost: dropped until the next keyframe.
    broken: bool,
}

impl Layer {
    fn new(index: usize, rid: Option<Rid>) -> Self {
        Self {
            rid,
            ingest: Box::new(AccessUnitIngest::new(layer_track(index), VideoCodec::H264)),
            broken: false,
        }
    }
}

/// Keyframe requests forwarded to one publisher at most this often (the
/// viewers' PLIs and FIRs are merged).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

impl Session {
    /// Drains the session's output: sends datagrams, hands media to the
    /// sink, notes the next timeout in `self.timeout`.
    fn drain(&mut self, socket: &UdpSocket, out: &mut Batcher) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    out.flush(socket);
                    return;
                }
                Ok(Output::Transmit(t)) => out.push(socket, &t.contents, t.destination),
                Ok(Output::Event(e)) => self.event(e),
                Err(e) => {
                    warn!(session = self.id, error = %e, "WebRTC session failed");
                    self.ended = Some("failed");
                    out.flush(socket);
                    return;
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        if let Event::IceConnectionStateChange(IceConnectionState::Disconnected) = event {
            self.ended = Some("disconnected");
            return;
        }
        if let Event::Connected = event {
            info!(session = self.id, "WebRTC peer connected");
            self.connect_by = None;
            if let Role::Viewer {
                connected,
                wants_keyframe,
                ..
            } = &mut self.role
            {
                *connected = true;
                // A new viewer starts faster from a fresh keyframe.
                *wants_keyframe = true;
            }
            self.viewer_ready();
            return;
        }
        let (sink, layers, audio_announced) = match &mut self.role {
            Role::Publisher {
                sink,
                layers,
                audio_announced,
                video_mid,
                channel,
                pending,
                ..
            } => {
                match &event {
                    Event::MediaAdded(m) if m.kind == MediaKind::Video => {
                        *video_mid = Some(m.mid);
                        // Simulcast: a layer per RID the peer sends, in
                        // its order (browsers list the largest first).
                        if let Some(sim) = &m.simulcast {
                            let rids = if sim.recv.is_empty() {
                                &sim.send
                            } else {
                                &sim.recv
                            };
                            for layer in rids.iter().take(MAX_LAYERS) {
                                let rid = Some(layer.rid);
                                if !layers.iter().any(|l| l.rid == rid) {
                                    layers.push(Layer::new(layers.len(), rid));
                                }
                            }
                        }
                    }
                    Event::ChannelOpen(id, _label) => {
                        *channel = Some(*id);
                        if let Some(mut ch) = self.rtc.channel(*id) {
                            for text in pending.drain(..) {
                                if !matches!(ch.write(false, text.as_bytes()), Ok(true)) {
                                    debug!(session = self.id, "data channel message dropped");
                                }
                            }
                        }
                        sink.channel_open();
                        return;
                    }
                    Event::ChannelClose(id) if *channel == Some(*id) => {
                        *channel = None;
                        return;
                    }
                    Event::ChannelData(d) => {
                        match std::str::from_utf8(&d.data) {
                            Ok(text) if !d.binary && text.len() <= MAX_MESSAGE_BYTES => {
                                sink.message(text);
                            }
                            _ => debug!(
                                session = self.id,
                                bytes = d.data.len(),
                                "data channel message dropped: binary, not UTF-8 or too large"
                            ),
                        }
                        return;
                    }
                    _ => {}
                }
                (sink, layers, audio_announced)
            }
            Role::Viewer {
                video,
                audio,
                wants_keyframe,
                estimate,
                reselect,
                ..
            } => {
                if let Event::KeyframeRequest(_) = event {
                    *wants_keyframe = true;
                    return;
                }
                if let Event::EgressBitrateEstimate(BweKind::Twcc { estimate: e, .. }) = event {
                    *estimate = Some(e.as_u64());
                    *reselect = true;
                    return;
                }
                if let Event::MediaAdded(m) = event {
                    match m.kind {
                        MediaKind::Video => *video = Some((m.mid, None)),
                        MediaKind::Audio => *audio = Some((m.mid, None)),
                    }
                    self.viewer_ready();
                }
                return;
            }
        };
        let Event::MediaData(d) = event else {
            return;
        };
        match d.params.spec().codec {
            Codec::H264 => {
                let layer = match layers.iter().position(|l| l.rid == d.rid) {
                    Some(i) => i,
                    None if layers.len() < MAX_LAYERS => {
                        layers.push(Layer::new(layers.len(), d.rid));
                        layers.len() - 1
                    }
                    None => return,
                };
                let layer = &mut layers[layer];
                // Packets lost beyond what NACK/RTX recovered: the frames
                // until the next keyframe would not decode, so they are
                // dropped and the publisher is asked for a keyframe.
                if !d.contiguous && !layer.broken {
                    layer.broken = true;
                    debug!(
                        session = self.id,
                        "H.264 frames lost: waiting for a keyframe"
                    );
                }
                if layer.broken {
                    if !d.is_keyframe() {
                        self.request_keyframe(Instant::now());
                        return;
                    }
                    layer.broken = false;
                }
                let ticks = d.time.rebase(str0m::media::Frequency::NINETY_KHZ).numer();
                let pts = MediaTime::new(ticks as i64, Timescale::MPEG_TS);
                for ev in layer.ingest.push_annexb(&d.data, pts, pts) {
                    sink.event(ev);
                }
            }
            Codec::Opus => {
                if let Some(level) = d.ext_vals.audio_level {
                    sink.audio_level(level);
                }
                if !*audio_announced {
                    *audio_announced = true;
                    sink.event(IngestEvent::Track {
                        id: AUDIO_TRACK,
                        params: TrackParams::Audio(opus_params()),
                    });
                }
                let rate = Timescale::HZ_48000;
                let ticks = d
                    .time
                    .rebase(str0m::media::Frequency::FORTY_EIGHT_KHZ)
                    .numer();
                let pts = MediaTime::new(ticks as i64, rate);
                sink.event(IngestEvent::Frame {
                    id: AUDIO_TRACK,
                    frame: Frame {
                        pts,
                        dts: pts,
                        duration: Some(MediaTime::new(OPUS_FRAME, rate)),
                        keyframe: true,
                        data: Bytes::copy_from_slice(&d.data),
                    },
                });
            }
            _ => {}
        }
    }
}

/// Opus as WebRTC carries it: 48 kHz, two channels (RFC 7587), with the
/// `dOps` record of the Opus-in-ISOBMFF encapsulation (version 0, 312
/// samples pre-skip, mapping family 0).
fn opus_params() -> AudioParams {
    let mut dops = vec![0u8, 2];
    dops.extend_from_slice(&312u16.to_be_bytes());
    dops.extend_from_slice(&48_000u32.to_be_bytes());
    dops.extend_from_slice(&0i16.to_be_bytes());
    dops.push(0);
    AudioParams {
        codec: AudioCodec::Opus,
        sample_rate: Timescale::HZ_48000,
        channels: 2,
        samples_per_frame: OPUS_FRAME as u32,
        codec_string: "opus".into(),
        decoder_config: Bytes::from(dops),
        language: None,
    }
}

/// Installs str0m's crypto provider (aws-lc-rs) for the process, once.
fn install_crypto() {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// The SDP answer a publisher's `offer` would get, without a session: what
/// the WHIP endpoint checks before anything else (fuzz target `whip_offer`).
///
/// # Errors
/// [`WebRtcError::BadOffer`] (too large, unparsable, refused by str0m),
/// [`WebRtcError::UnsupportedCodecs`].
pub fn check_offer(offer: &str) -> Result<String, WebRtcError> {
    install_crypto();
    answer_offer(offer, SocketAddr::from(([127, 0, 0, 1], 9)), false).map(|(_, answer)| answer)
}

/// A new publisher session for `offer`, answering from `announced`.
fn accept(
    id: SessionId,
    offer: &str,
    announced: SocketAddr,
    sink: Box<dyn MediaSink>,
) -> Result<(Session, String), WebRtcError> {
    let (rtc, answer) = answer_offer(offer, announced, false)?;
    Ok((
        Session {
            id,
            rtc,
            role: Role::Publisher {
                sink,
                layers: Vec::new(),
                audio_announced: false,
                video_mid: None,
                last_keyframe_request: None,
                channel: None,
                pending: VecDeque::new(),
            },
            ended: None,
            timeout: Instant::now(),
            remotes: Vec::new(),
            connect_by: Some(Instant::now() + CONNECT_TIMEOUT),
        },
        answer,
    ))
}

impl Session {
    /// Asks a publisher for a keyframe (PLI), at most once per
    /// [`KEYFRAME_REQUEST_INTERVAL`].
    fn request_keyframe(&mut self, now: Instant) {
        let Role::Publisher {
            video_mid: Some(mid),
            last_keyframe_request,
            layers,
            ..
        } = &mut self.role
        else {
            return;
        };
        if last_keyframe_request.is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return;
        }
        *last_keyframe_request = Some(now);
        // Every layer of a simulcast publisher (each has its own encoder).
        let rids: Vec<Option<Rid>> = if layers.is_empty() {
            vec![None]
        } else {
            layers.iter().map(|l| l.rid).collect()
        };
        let mid = *mid;
        if let Some(mut writer) = self.rtc.writer(mid) {
            for rid in rids {
                if let Err(e) = writer.request_keyframe(rid, KeyframeRequestKind::Pli) {
                    debug!(session = self.id, error = %e, "keyframe request not sent");
                }
            }
        }
    }

    /// Writes `text` on a publisher's data channel, or keeps it until the
    /// channel opens.
    fn send_text(&mut self, text: String) {
        let Role::Publisher {
            channel, pending, ..
        } = &mut self.role
        else {
            return;
        };
        let written = channel
            .and_then(|id| self.rtc.channel(id))
            .map(|mut ch| matches!(ch.write(false, text.as_bytes()), Ok(true)));
        match written {
            Some(true) => {}
            Some(false) => debug!(session = self.id, "data channel message dropped"),
            None => {
                if pending.len() >= MAX_PENDING_MESSAGES {
                    pending.pop_front();
                }
                pending.push_back(text);
            }
        }
    }

    /// Tells a viewer's handle it is ready once connected with media.
    fn viewer_ready(&mut self) {
        if let Role::Viewer {
            ready,
            connected,
            video,
            audio,
            live,
            starting,
            ..
        } = &mut self.role
            && *connected
            && (video.is_some() || audio.is_some())
            && !*live
        {
            *live = true;
            *starting = true;
            if let Some(tx) = ready.take() {
                // The handle may be gone: the session plays on.
                let _ = tx.send(());
            }
        }
    }

    /// Writes `frame` to a viewer's matching media (dropped until the
    /// media is negotiated and connected; video then from a keyframe).
    fn write(&mut self, frame: &OutFrame, now: Instant) {
        let Role::Viewer {
            video,
            audio,
            needs_keyframe,
            layer: current,
            target,
            ..
        } = &mut self.role
        else {
            return;
        };
        let (slot, codec, time, data) = match frame {
            OutFrame::Video {
                data,
                rtp_time,
                keyframe,
                layer,
            } => {
                // One layer at a time: the current one, or the target from
                // its keyframe on (the first layer seen when none is chosen).
                if *current != Some(*layer) {
                    let wanted = target.is_none_or(|t| t == *layer);
                    if !(*keyframe && wanted) {
                        return;
                    }
                    *current = Some(*layer);
                    *needs_keyframe = false;
                }
                if *needs_keyframe && !keyframe {
                    return;
                }
                (video, Codec::H264, MediaTime90(*rtp_time).get(), data)
            }
            OutFrame::Audio { data, rtp_time } => (
                audio,
                Codec::Opus,
                str0m::media::MediaTime::new(*rtp_time, Frequency::FORTY_EIGHT_KHZ),
                data,
            ),
        };
        let is_video = codec == Codec::H264;
        let Some((mid, pt)) = slot else {
            return;
        };
        let Some(writer) = self.rtc.writer(*mid) else {
            if is_video {
                *needs_keyframe = true;
            }
            return;
        };
        if is_video {
            *needs_keyframe = false;
        }
        let pt = match pt {
            Some(pt) => *pt,
            None => {
                let found = writer
                    .payload_params()
                    .find(|p| {
                        p.spec().codec == codec
                            && (codec != Codec::H264
                                || p.spec().format.packetization_mode == Some(1))
                    })
                    .map(|p| p.pt());
                let Some(found) = found else {
                    return;
                };
                *pt = Some(found);
                found
            }
        };
        if let Err(e) = writer.write(pt, now, time, data.clone()) {
            debug!(session = self.id, error = %e, "WebRTC write refused");
        }
    }
}

/// A 90 kHz RTP time as str0m's media time.
struct MediaTime90(u64);

impl MediaTime90 {
    fn get(self) -> str0m::media::MediaTime {
        str0m::media::MediaTime::from_90khz(self.0)
    }
}

/// The bandwidth a viewer's estimate starts from (TWCC, RFC 8888 feedback
/// via the transport-wide sequence extension): its first layer is the
/// highest that fits, and probing finds more.
pub const INITIAL_ESTIMATE_BPS: u64 = 1_000_000;

/// An ICE-lite `Rtc` receiving (or, for a `viewer`, sending with
/// bandwidth estimation) H.264 and Opus that accepted `offer`, and its
/// answer, with the one candidate `announced`.
fn answer_offer(
    offer: &str,
    announced: SocketAddr,
    viewer: bool,
) -> Result<(Rtc, String), WebRtcError> {
    if offer.len() > MAX_OFFER_BYTES {
        return Err(WebRtcError::BadOffer("offer too large".into()));
    }
    let offer =
        SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true, false);
    if viewer {
        // Bandwidth estimation towards viewers: it picks their simulcast
        // layer.
        config = config.enable_bwe(Some(Bitrate::bps(INITIAL_ESTIMATE_BPS)));
    }
    let mut rtc = config.build(Instant::now());
    let candidate = Candidate::host(announced, "udp")
        .map_err(|e| WebRtcError::BadOffer(format!("candidate: {e}")))?;
    rtc.add_local_candidate(candidate);
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
    let answer = answer.to_sdp_string();
    let lower = answer.to_ascii_lowercase();
    if !lower.contains("h264/90000") && !lower.contains("opus/48000") {
        return Err(WebRtcError::UnsupportedCodecs);
    }
    Ok((rtc, answer))
}

/// What the session task keeps of a feed.
#[derive(Default)]
struct FeedState {
    /// The viewers playing it.
    viewers: Vec<SessionId>,
    /// Per video layer: its frames since its last keyframe, with the audio
    /// frames since (none before the first keyframe, none when they grew
    /// beyond [`MAX_GOP_BYTES`]), and its measured bit rate.
    layers: HashMap<u32, LayerState>,
}

#[derive(Default)]
struct LayerState {
    gop: Vec<OutFrame>,
    gop_bytes: usize,
    /// Bytes in the current second, since `window`.
    bytes: usize,
    window: Option<Instant>,
    /// The bit rate of the last whole second (0 until one passed).
    bps: u64,
}

impl LayerState {
    fn keep(&mut self, frame: &OutFrame) {
        if frame.is_keyframe() {
            self.gop.clear();
            self.gop_bytes = 0;
        } else if self.gop.is_empty() {
            return;
        }
        self.gop_bytes += frame.len();
        if self.gop_bytes > MAX_GOP_BYTES {
            self.gop = Vec::new();
            self.gop_bytes = 0;
            return;
        }
        self.gop.push(frame.clone());
    }

    fn count(&mut self, bytes: usize, now: Instant) {
        let start = *self.window.get_or_insert(now);
        let elapsed = now.duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            self.bps = (self.bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
            self.bytes = 0;
            self.window = Some(now);
        }
        self.bytes += bytes;
    }
}

/// Share of the bandwidth estimate a layer's bit rate may use (the rest
/// is headroom for audio, RTP overhead and the estimate's noise).
const LAYER_HEADROOM: f64 = 0.8;

impl FeedState {
    fn keep(&mut self, frame: &OutFrame, now: Instant) {
        match frame.layer() {
            Some(layer) => {
                let state = self.layers.entry(layer).or_default();
                state.count(frame.len(), now);
                state.keep(frame);
            }
            None => {
                for state in self.layers.values_mut() {
                    state.keep(frame);
                }
            }
        }
    }

    /// The frames a viewer starting on `layer` gets at once.
    fn gop(&self, layer: Option<u32>) -> &[OutFrame] {
        layer
            .and_then(|l| self.layers.get(&l))
            .map_or(&[], |s| s.gop.as_slice())
    }

    /// The layer for a viewer with bandwidth `estimate`: the one of the
    /// highest measured bit rate within [`LAYER_HEADROOM`] of it, else the
    /// lowest; without an estimate (or rates yet), the highest. `None`
    /// without layers.
    fn choose(&self, estimate: Option<u64>) -> Option<u32> {
        let mut by_rate: Vec<(u64, u32)> = self.layers.iter().map(|(id, s)| (s.bps, *id)).collect();
        by_rate.sort_unstable();
        let Some(estimate) = estimate else {
            return by_rate.last().map(|(_, id)| *id);
        };
        let budget = (estimate as f64 * LAYER_HEADROOM) as u64;
        by_rate
            .iter()
            .rev()
            .find(|(bps, _)| *bps <= budget)
            .or(by_rate.first())
            .map(|(_, id)| *id)
    }

    /// The bit rates a viewer on `layer` should keep probing for: the next
    /// layer up (minimum) and the highest (desired), bits per second.
    fn probe(&self, layer: u32) -> Option<(u64, u64)> {
        let current = self.layers.get(&layer)?.bps;
        let mut rates: Vec<u64> = self.layers.values().map(|s| s.bps).collect();
        rates.sort_unstable();
        let highest = *rates.last()?;
        let next = rates
            .iter()
            .copied()
            .find(|r| *r > current)
            .unwrap_or(current);
        Some((next, highest))
    }
}

/// The session task's state: every session, and how to find them.
struct Sfu {
    socket: UdpSocket,
    bound: SocketAddr,
    announced: SocketAddr,
    limits: Limits,
    sessions: HashMap<SessionId, Session>,
    /// A remote address → the session that last accepted a datagram from
    /// it.
    routes: HashMap<SocketAddr, SessionId>,
    /// Sessions' timeouts, earliest first; an entry whose time is no longer
    /// its session's `timeout` is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, SessionId)>>,
    feeds: HashMap<FeedId, FeedState>,
    next_id: SessionId,
    /// Publishers that viewers asked a keyframe of since the last
    /// forwarding.
    keyframes_wanted: Vec<SessionId>,
    /// A reused list of session ids.
    scratch: Vec<SessionId>,
    /// Datagrams on their way out, batched per destination.
    out: Batcher,
}

/// Receive buffer asked for the WebRTC socket (bytes).
const RECV_BUFFER: usize = 4 << 20;

/// Datagrams read in one go before other work gets a turn.
const RECV_BATCH: usize = 64;

impl Sfu {
    /// The session task's loop.
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut media: mpsc::Receiver<(FeedId, OutFrame)>,
        mut feeds: mpsc::UnboundedReceiver<FeedControl>,
        mut texts: mpsc::Receiver<(SessionId, String)>,
    ) {
        let mut buf = vec![0u8; 2048];
        loop {
            self.forward_keyframe_requests();
            let next = self.next_timeout();
            // In this order: a feed is opened before its frames are read,
            // and a flood of datagrams cannot starve the rest.
            tokio::select! {
                biased;
                control = feeds.recv() => match control {
                    Some(FeedControl::Open(feed)) => {
                        self.feeds.insert(feed, FeedState::default());
                    }
                    Some(FeedControl::Close(feed)) => {
                        // The broadcast ended: so do its viewers' sessions
                        // (a WHEP player reconnects; a room participant was
                        // told who left).
                        if let Some(state) = self.feeds.remove(&feed) {
                            for id in state.viewers {
                                if let Some(s) = self.sessions.get_mut(&id) {
                                    s.rtc.disconnect();
                                    s.ended = Some("closed");
                                }
                                self.settle(id);
                            }
                        }
                    }
                    // Every sender gone: so is every `WebRtc` handle.
                    None => return,
                },
                command = commands.recv() => match command {
                    None => return,
                    Some(command) => self.command(command),
                },
                frame = media.recv() => {
                    if let Some((feed, frame)) = frame {
                        self.feed_frame(feed, frame);
                    }
                }
                text = texts.recv() => {
                    if let Some((id, text)) = text
                        && let Some(s) = self.sessions.get_mut(&id)
                    {
                        s.send_text(text);
                        self.settle(id);
                    }
                }
                () = tokio::time::sleep_until(next.into()) => self.timeouts(),
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = received {
                        self.receive(&buf[..n], source);
                    }
                    // More that are already there, without a turn of the
                    // select each.
                    for _ in 1..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => self.receive(&buf[..n], source),
                            Err(_) => break,
                        }
                    }
                }
            }
        }
    }

    /// When the earliest session timeout is due (in 100 ms without any).
    fn next_timeout(&mut self) -> Instant {
        while let Some(Reverse((t, id))) = self.timers.peek() {
            if self.sessions.get(id).is_some_and(|s| s.timeout == *t) {
                return *t;
            }
            self.timers.pop();
        }
        Instant::now() + Duration::from_millis(100)
    }

    /// Hands the due sessions their timeout.
    fn timeouts(&mut self) {
        let now = Instant::now();
        let mut due = std::mem::take(&mut self.scratch);
        due.clear();
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.sessions.get(&id).is_some_and(|s| s.timeout == t) {
                due.push(id);
            }
        }
        for id in &due {
            if let Some(s) = self.sessions.get_mut(id)
                && let Err(e) = s.rtc.handle_input(Input::Timeout(now))
            {
                debug!(session = s.id, error = %e, "WebRTC timeout handling failed");
            }
            self.settle(*id);
        }
        self.scratch = due;
    }

    /// A datagram from `source`: to the session routed to that address,
    /// else to the first that accepts it (and the address is routed there).
    fn receive(&mut self, data: &[u8], source: SocketAddr) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.bound,
                contents,
            },
        );
        let routed = self
            .routes
            .get(&source)
            .copied()
            .filter(|id| self.sessions.get(id).is_some_and(|s| s.rtc.accepts(&input)));
        let id = match routed {
            Some(id) => id,
            None => {
                let Some(s) = self.sessions.values_mut().find(|s| s.rtc.accepts(&input)) else {
                    return;
                };
                self.routes.insert(source, s.id);
                if !s.remotes.contains(&source) {
                    if s.remotes.len() >= MAX_REMOTES {
                        let old = s.remotes.remove(0);
                        if self.routes.get(&old) == Some(&s.id) {
                            self.routes.remove(&old);
                        }
                    }
                    s.remotes.push(source);
                }
                s.id
            }
        };
        if let Some(s) = self.sessions.get_mut(&id)
            && let Err(e) = s.rtc.handle_input(input)
        {
            debug!(session = id, error = %e, "WebRTC input refused");
        }
        self.settle(id);
    }

    /// One frame of `feed`: kept for late viewers, written to every live
    /// viewer of it.
    fn feed_frame(&mut self, feed: FeedId, frame: OutFrame) {
        let Some(state) = self.feeds.get_mut(&feed) else {
            return;
        };
        state.keep(&frame, Instant::now());
        let mut viewers = std::mem::take(&mut self.scratch);
        viewers.clear();
        viewers.extend_from_slice(&state.viewers);
        let now = Instant::now();
        for id in &viewers {
            if let Some(s) = self.sessions.get_mut(id)
                && matches!(s.role, Role::Viewer { live: true, .. })
            {
                s.write(&frame, now);
                self.settle(*id);
            }
        }
        self.scratch = viewers;
    }

    /// After a mutation of session `id`: drains it, starts a viewer that
    /// just became ready from its feed's last keyframe, notes keyframe
    /// wishes, ends it if it ended, and re-arms its timer.
    fn settle(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let before = s.timeout;
        s.drain(&self.socket, &mut self.out);
        if let Some(by) = s.connect_by {
            if Instant::now() >= by && s.ended.is_none() {
                s.ended = Some("timeout");
            }
            // Woken at the deadline at the latest.
            s.timeout = s.timeout.min(by);
        }
        if let Role::Viewer {
            starting,
            feed,
            wants_keyframe,
            source,
            layer,
            target,
            estimate,
            reselect,
            ..
        } = &mut s.role
        {
            // Simulcast: the layer its bandwidth estimate affords; a new
            // target asks the publisher for keyframes (the switch happens
            // at the target's next one), and BWE keeps probing for the
            // next layer up.
            let state = self.feeds.get(feed);
            if (std::mem::take(reselect) || *starting)
                && let Some(state) = state
                && state.layers.len() > 1
            {
                let chosen = state.choose(*estimate);
                if chosen != *target {
                    debug!(session = id, layer = ?chosen, estimate = ?*estimate, "viewer layer target");
                    *target = chosen;
                    if chosen != *layer {
                        *wants_keyframe = true;
                    }
                }
                if let Some((minimum, desired)) = layer.or(chosen).and_then(|l| state.probe(l)) {
                    s.rtc
                        .bwe()
                        .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired + desired / 4));
                }
            }
            if std::mem::take(wants_keyframe)
                && let Some(source) = source
                && !self.keyframes_wanted.contains(source)
            {
                self.keyframes_wanted.push(*source);
            }
            if std::mem::take(starting)
                && let Some(state) = state
            {
                let start = target.or_else(|| state.choose(*estimate));
                let gop = state.gop(start);
                if !gop.is_empty() {
                    *target = start;
                    let now = Instant::now();
                    for frame in gop {
                        s.write(frame, now);
                    }
                    s.drain(&self.socket, &mut self.out);
                }
            }
        }
        if let Some(reason) = s.ended {
            self.end(id, reason);
            return;
        }
        if s.timeout != before {
            self.timers.push(Reverse((s.timeout, id)));
        }
    }

    /// Removes session `id`, telling its sink or handle `reason`.
    fn end(&mut self, id: SessionId, reason: &'static str) {
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        info!(session = id, reason, "WebRTC session ended");
        for remote in &s.remotes {
            if self.routes.get(remote) == Some(&id) {
                self.routes.remove(remote);
            }
        }
        match &mut s.role {
            Role::Publisher { sink, .. } => sink.ended(reason),
            Role::Viewer { ended, feed, .. } => {
                if let Some(state) = self.feeds.get_mut(feed) {
                    state.viewers.retain(|v| *v != id);
                }
                if let Some(tx) = ended.take() {
                    // The handle may be gone already.
                    let _ = tx.send(reason);
                }
            }
        }
    }

    /// Forwards viewers' keyframe wishes to the WHIP publishers feeding
    /// them (PLI, at most one per [`KEYFRAME_REQUEST_INTERVAL`] per
    /// publisher).
    fn forward_keyframe_requests(&mut self) {
        if self.keyframes_wanted.is_empty() {
            return;
        }
        let now = Instant::now();
        for id in std::mem::take(&mut self.keyframes_wanted) {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            s.request_keyframe(now);
            self.settle(id);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Play {
                offer,
                source,
                feed,
                ready,
                ended,
                reply,
            } => {
                if self.sessions.len() >= self.limits.max_sessions {
                    let _ = reply.send(Err(WebRtcError::Full));
                    return;
                }
                let id = self.next_id;
                self.next_id += 1;
                match answer_offer(&offer, self.announced, true) {
                    Ok((rtc, answer)) => {
                        self.sessions.insert(
                            id,
                            Session {
                                id,
                                rtc,
                                role: Role::Viewer {
                                    ended: Some(ended),
                                    ready: Some(ready),
                                    connected: false,
                                    video: None,
                                    audio: None,
                                    needs_keyframe: true,
                                    source,
                                    wants_keyframe: false,
                                    feed,
                                    live: false,
                                    starting: false,
                                    layer: None,
                                    target: None,
                                    estimate: None,
                                    reselect: false,
                                },
                                ended: None,
                                timeout: Instant::now(),
                                remotes: Vec::new(),
                                connect_by: Some(Instant::now() + CONNECT_TIMEOUT),
                            },
                        );
                        // An ended feed has no state: its viewer gets
                        // nothing.
                        if let Some(state) = self.feeds.get_mut(&feed) {
                            state.viewers.push(id);
                        }
                        self.settle(id);
                        // The caller may have given up waiting.
                        let _ = reply.send(Ok((id, answer)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Publish { offer, sink, reply } => {
                if self.sessions.len() >= self.limits.max_sessions {
                    let _ = reply.send(Err(WebRtcError::Full));
                    return;
                }
                let id = self.next_id;
                self.next_id += 1;
                match accept(id, &offer, self.announced, sink) {
                    Ok((session, answer)) => {
                        self.sessions.insert(id, session);
                        self.settle(id);
                        let _ = reply.send(Ok((id, answer)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Candidates {
                id,
                candidates,
                reply,
            } => {
                let known = match self.sessions.get_mut(&id) {
                    Some(s) => {
                        for c in candidates {
                            s.rtc.add_remote_candidate(c);
                        }
                        true
                    }
                    None => false,
                };
                self.settle(id);
                let _ = reply.send(known);
            }
            Command::Close { id, reply } => {
                let known = match self.sessions.get_mut(&id) {
                    Some(s) => {
                        s.rtc.disconnect();
                        s.ended = Some("closed");
                        true
                    }
                    None => false,
                };
                self.settle(id);
                let _ = reply.send(known);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::media::{Direction, MediaKind};

    /// An offer from a str0m peer sending video with only the codecs
    /// `config` enables.
    fn offer(config: RtcConfig) -> String {
        install_crypto();
        let mut rtc = config.build(Instant::now());
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, _pending) = change.apply().expect("an offer");
        offer.to_sdp_string()
    }

    #[test]
    fn trickle_fragments_parse_or_are_refused_with_a_reason() {
        let f = parse_sdpfrag(
            "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
             a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
             a=end-of-candidates\r\n",
        )
        .expect("a fragment");
        assert_eq!(f.ice_ufrag.as_deref(), Some("EsAw"));
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(
            f.candidates[0].addr(),
            SocketAddr::from(([192, 0, 2, 1], 61764))
        );
        assert!(matches!(
            parse_sdpfrag("a=candidate:nonsense"),
            Err(WebRtcError::BadOffer(_))
        ));
        let many =
            "a=candidate:1 1 udp 1 192.0.2.1 1 typ host\n".repeat(MAX_FRAGMENT_CANDIDATES + 1);
        assert!(matches!(
            parse_sdpfrag(&many),
            Err(WebRtcError::BadOffer(_))
        ));
    }

    #[test]
    fn offers_are_answered_or_refused_with_a_reason() {
        let answer = check_offer(&offer(RtcConfig::new())).expect("H.264 and Opus offered");
        assert!(answer.contains("H264/90000"), "{answer}");
        // Retransmissions (RFC 4585 NACK, RFC 4588 RTX) and the audio
        // levels the active speaker is picked by (RFC 6464).
        assert!(
            answer.contains("nack") && answer.contains("rtx/90000"),
            "{answer}"
        );
        assert!(
            answer.contains("urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            "{answer}"
        );
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(answer.contains("127.0.0.1 9 typ host"), "{answer}");

        let vp8_only = RtcConfig::new()
            .clear_codecs()
            .enable_vp8(true)
            .enable_opus(false, false);
        assert!(matches!(
            check_offer(&offer(vp8_only)),
            Err(WebRtcError::UnsupportedCodecs)
        ));
        assert!(matches!(
            check_offer("v=0\r\nnot sdp"),
            Err(WebRtcError::BadOffer(_))
        ));
        let huge = "a".repeat(MAX_OFFER_BYTES + 1);
        assert!(matches!(check_offer(&huge), Err(WebRtcError::BadOffer(_))));
    }
}
