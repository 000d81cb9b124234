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
    collections::{BinaryHeap, HashMap},
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
    change::SdpOffer,
    format::Codec,
    media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Pt},
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

/// Where a publisher's media goes.
pub trait MediaSink: Send + 'static {
    /// A track's parameters or a frame.
    fn event(&mut self, event: IngestEvent);
    /// The session ended (`reason`: `disconnected`, `closed`, `failed`).
    fn ended(&mut self, reason: &'static str);
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
    /// A video frame was dropped: video waits for the next keyframe.
    broken: bool,
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
        let video = matches!(frame, OutFrame::Video { .. });
        if video && self.broken && !frame.is_keyframe() {
            return false;
        }
        let sent = self.media.try_send((self.id, frame)).is_ok();
        if video {
            self.broken = !sent;
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
}

/// The WebRTC endpoint: its UDP socket and the task driving every session.
#[derive(Debug, Clone)]
pub struct WebRtc {
    commands: mpsc::Sender<Command>,
    media: mpsc::Sender<(FeedId, OutFrame)>,
    feed_control: mpsc::UnboundedSender<FeedControl>,
    next_feed: Arc<AtomicU64>,
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
        tokio::spawn(sfu.run(rx, media_rx, control_rx));
        Ok(Self {
            commands,
            media,
            feed_control,
            next_feed: Arc::new(AtomicU64::new(1)),
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
            broken: false,
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
}

/// Remote addresses one session keeps routed at most (ICE may use a few;
/// an older one is then looked up by `accepts` again).
const MAX_REMOTES: usize = 4;

enum Role {
    Publisher {
        sink: Box<dyn MediaSink>,
        /// Boxed: far larger than a viewer's state.
        video: Box<AccessUnitIngest>,
        audio_announced: bool,
        /// The mid of the video it sends (keyframe requests go there).
        video_mid: Option<Mid>,
        /// When a keyframe was last asked of it.
        last_keyframe_request: Option<Instant>,
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
    },
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
        let (sink, video, audio_announced) = match &mut self.role {
            Role::Publisher {
                sink,
                video,
                audio_announced,
                video_mid,
                ..
            } => {
                if let Event::MediaAdded(m) = &event
                    && m.kind == MediaKind::Video
                {
                    *video_mid = Some(m.mid);
                }
                (sink, video, audio_announced)
            }
            Role::Viewer {
                video,
                audio,
                wants_keyframe,
                ..
            } => {
                if let Event::KeyframeRequest(_) = event {
                    *wants_keyframe = true;
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
                let ticks = d.time.rebase(str0m::media::Frequency::NINETY_KHZ).numer();
                let pts = MediaTime::new(ticks as i64, Timescale::MPEG_TS);
                for ev in video.push_annexb(&d.data, pts, pts) {
                    sink.event(ev);
                }
            }
            Codec::Opus => {
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
    answer_offer(offer, SocketAddr::from(([127, 0, 0, 1], 9))).map(|(_, answer)| answer)
}

/// A new publisher session for `offer`, answering from `announced`.
fn accept(
    id: SessionId,
    offer: &str,
    announced: SocketAddr,
    sink: Box<dyn MediaSink>,
) -> Result<(Session, String), WebRtcError> {
    let (rtc, answer) = answer_offer(offer, announced)?;
    Ok((
        Session {
            id,
            rtc,
            role: Role::Publisher {
                sink,
                video: Box::new(AccessUnitIngest::new(VIDEO_TRACK, VideoCodec::H264)),
                audio_announced: false,
                video_mid: None,
                last_keyframe_request: None,
            },
            ended: None,
            timeout: Instant::now(),
            remotes: Vec::new(),
        },
        answer,
    ))
}

impl Session {
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
            } => {
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

/// An ICE-lite `Rtc` receiving H.264 and Opus that accepted `offer`, and
/// its answer, with the one candidate `announced`.
fn answer_offer(offer: &str, announced: SocketAddr) -> Result<(Rtc, String), WebRtcError> {
    if offer.len() > MAX_OFFER_BYTES {
        return Err(WebRtcError::BadOffer("offer too large".into()));
    }
    let offer =
        SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true, false)
        .build(Instant::now());
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
    /// Its frames since the last video keyframe (none before the first,
    /// none when they grew beyond [`MAX_GOP_BYTES`]).
    gop: Vec<OutFrame>,
    gop_bytes: usize,
}

impl FeedState {
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
                        self.feeds.remove(&feed);
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
        state.keep(&frame);
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
        if let Role::Viewer {
            starting,
            feed,
            wants_keyframe,
            source,
            ..
        } = &mut s.role
        {
            if std::mem::take(wants_keyframe)
                && let Some(source) = source
                && !self.keyframes_wanted.contains(source)
            {
                self.keyframes_wanted.push(*source);
            }
            if std::mem::take(starting)
                && let Some(state) = self.feeds.get(feed)
                && !state.gop.is_empty()
            {
                let now = Instant::now();
                for frame in &state.gop {
                    s.write(frame, now);
                }
                s.drain(&self.socket, &mut self.out);
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
            let Role::Publisher {
                video_mid: Some(mid),
                last_keyframe_request,
                ..
            } = &mut s.role
            else {
                continue;
            };
            if last_keyframe_request
                .is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
            {
                continue;
            }
            *last_keyframe_request = Some(now);
            if let Some(mut writer) = s.rtc.writer(*mid)
                && let Err(e) = writer.request_keyframe(None, KeyframeRequestKind::Pli)
            {
                debug!(session = id, error = %e, "keyframe request not sent");
            }
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
                match answer_offer(&offer, self.announced) {
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
                                },
                                ended: None,
                                timeout: Instant::now(),
                                remotes: Vec::new(),
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
    fn offers_are_answered_or_refused_with_a_reason() {
        let answer = check_offer(&offer(RtcConfig::new())).expect("H.264 and Opus offered");
        assert!(answer.contains("H264/90000"), "{answer}");
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
