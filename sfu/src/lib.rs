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
//! A datagram goes to the session whose `Rtc::accepts` it.
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
//! # Limits
//!
//! [`MAX_SESSIONS`] sessions per node; an offer larger than
//! [`MAX_OFFER_BYTES`] is refused; a session whose ICE disconnects ends.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Once,
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

/// Sessions one node holds at most.
pub const MAX_SESSIONS: usize = 256;

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
    /// The node holds [`MAX_SESSIONS`] sessions.
    #[error("this node holds as many WebRTC sessions as it may")]
    Full,
    /// The WebRTC task is gone.
    #[error("the WebRTC task is gone")]
    Gone,
}

/// A frame for a viewer session, in the form RTP payloaders take.
#[derive(Debug)]
pub enum OutFrame {
    /// One H.264 access unit in Annex B (start codes; parameter sets before
    /// an IDR), at a 90 kHz RTP time.
    Video {
        /// The access unit.
        data: Bytes,
        /// Presentation time, 90 kHz ticks.
        rtp_time: u64,
        /// An IDR access unit (decoding can start here).
        keyframe: bool,
    },
    /// One Opus packet at a 48 kHz RTP time.
    Audio {
        /// The Opus packet.
        data: Bytes,
        /// Presentation time, 48 kHz ticks.
        rtp_time: u64,
    },
}

/// Frames queued towards the session task at most; beyond, frames are
/// dropped (a viewer that cannot keep up never slows the others).
pub const MEDIA_QUEUE: usize = 4096;

/// A viewer session's handle: where its frames go, and its end.
#[derive(Debug)]
pub struct Viewer {
    /// The session.
    pub id: SessionId,
    media: mpsc::Sender<(SessionId, OutFrame)>,
    ready: Option<oneshot::Receiver<()>>,
    ended: oneshot::Receiver<&'static str>,
}

impl Viewer {
    /// Queues `frame`; false when the queue is full (the frame is dropped)
    /// or the task is gone.
    pub fn send(&self, frame: OutFrame) -> bool {
        self.media.try_send((self.id, frame)).is_ok()
    }

    /// Resolves when the session is connected and its media negotiated:
    /// frames sent before would be dropped (the first keyframe with them).
    /// At most `wait`; false if the session did not get there.
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
    media: mpsc::Sender<(SessionId, OutFrame)>,
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
    pub async fn bind(addr: SocketAddr, public_ip: Option<IpAddr>) -> std::io::Result<Self> {
        install_crypto();
        let socket = UdpSocket::bind(addr).await?;
        let bound = socket.local_addr()?;
        let announced = public_ip.map_or(bound, |ip| SocketAddr::new(ip, bound.port()));
        let (commands, rx) = mpsc::channel(64);
        let (media, media_rx) = mpsc::channel(MEDIA_QUEUE);
        tokio::spawn(run(socket, bound, announced, rx, media_rx));
        Ok(Self {
            commands,
            media,
            local: bound,
        })
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

    /// Answers a viewer's `offer` (WHEP): the session sends what the
    /// returned [`Viewer`] is given; its keyframe requests (and its start)
    /// ask the WHIP publisher session `source` for a keyframe, when the
    /// stream comes from one. Returns the SDP answer too.
    ///
    /// # Errors
    /// [`WebRtcError`].
    pub async fn play(
        &self,
        offer: &str,
        source: Option<SessionId>,
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
                media: self.media.clone(),
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
}

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
    },
}

/// Keyframe requests forwarded to one publisher at most this often (the
/// viewers' PLIs and FIRs are merged).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

impl Session {
    /// Drains the session's output: sends datagrams, hands media to the
    /// sink, notes the next timeout in `next`.
    fn drain(&mut self, socket: &UdpSocket, next: &mut Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    *next = (*next).min(t);
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = socket.try_send_to(&t.contents, t.destination) {
                        debug!(session = self.id, error = %e, "WebRTC send dropped");
                    }
                }
                Ok(Output::Event(e)) => self.event(e),
                Err(e) => {
                    warn!(session = self.id, error = %e, "WebRTC session failed");
                    self.ended = Some("failed");
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
            ..
        } = &mut self.role
            && *connected
            && (video.is_some() || audio.is_some())
            && let Some(tx) = ready.take()
        {
            let _ = tx.send(());
        }
    }

    /// Writes `frame` to a viewer's matching media (dropped until the
    /// media is negotiated and connected; video then from a keyframe).
    fn write(&mut self, frame: OutFrame) {
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
                (video, Codec::H264, MediaTime90(rtp_time).get(), data)
            }
            OutFrame::Audio { data, rtp_time } => (
                audio,
                Codec::Opus,
                str0m::media::MediaTime::new(rtp_time, Frequency::FORTY_EIGHT_KHZ),
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
        if let Err(e) = writer.write(pt, Instant::now(), time, data.to_vec()) {
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

/// Forwards viewers' keyframe wishes to the WHIP publishers feeding them
/// (PLI, at most one per [`KEYFRAME_REQUEST_INTERVAL`] per publisher).
fn forward_keyframe_requests(sessions: &mut [Session]) {
    let mut wanted: Vec<SessionId> = Vec::new();
    for s in sessions.iter_mut() {
        if let Role::Viewer {
            wants_keyframe,
            source: Some(source),
            ..
        } = &mut s.role
            && std::mem::take(wants_keyframe)
            && !wanted.contains(source)
        {
            wanted.push(*source);
        }
    }
    let now = Instant::now();
    for s in sessions.iter_mut().filter(|s| wanted.contains(&s.id)) {
        let Role::Publisher {
            video_mid: Some(mid),
            last_keyframe_request,
            ..
        } = &mut s.role
        else {
            continue;
        };
        if last_keyframe_request.is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            continue;
        }
        *last_keyframe_request = Some(now);
        if let Some(mut writer) = s.rtc.writer(*mid)
            && let Err(e) = writer.request_keyframe(None, KeyframeRequestKind::Pli)
        {
            debug!(session = s.id, error = %e, "keyframe request not sent");
        }
    }
}

/// The session task.
async fn run(
    socket: UdpSocket,
    bound: SocketAddr,
    announced: SocketAddr,
    mut commands: mpsc::Receiver<Command>,
    mut media: mpsc::Receiver<(SessionId, OutFrame)>,
) {
    let mut sessions: Vec<Session> = Vec::new();
    let mut next_id: SessionId = 1;
    let mut buf = vec![0u8; 2048];
    loop {
        let mut next = Instant::now() + Duration::from_millis(100);
        for s in &mut sessions {
            s.drain(&socket, &mut next);
        }
        forward_keyframe_requests(&mut sessions);
        sessions.retain_mut(|s| match s.ended {
            Some(reason) => {
                info!(session = s.id, reason, "WebRTC session ended");
                match &mut s.role {
                    Role::Publisher { sink, .. } => sink.ended(reason),
                    Role::Viewer { ended, .. } => {
                        if let Some(tx) = ended.take() {
                            let _ = tx.send(reason);
                        }
                    }
                }
                false
            }
            None => true,
        });
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, source)) = received else { continue };
                let Ok(contents) = buf[..n].try_into() else { continue };
                let input = Input::Receive(
                    Instant::now(),
                    Receive { proto: Protocol::Udp, source, destination: bound, contents },
                );
                if let Some(s) = sessions.iter_mut().find(|s| s.rtc.accepts(&input))
                    && let Err(e) = s.rtc.handle_input(input)
                {
                    debug!(session = s.id, error = %e, "WebRTC input refused");
                }
            }
            frame = media.recv() => {
                if let Some((id, frame)) = frame
                    && let Some(s) = sessions.iter_mut().find(|s| s.id == id)
                {
                    s.write(frame);
                }
            }
            command = commands.recv() => match command {
                None => return,
                Some(Command::Play { offer, source, ready, ended, reply }) => {
                    if sessions.len() >= MAX_SESSIONS {
                        let _ = reply.send(Err(WebRtcError::Full));
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    match answer_offer(&offer, announced) {
                        Ok((rtc, answer)) => {
                            sessions.push(Session {
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
                                },
                                ended: None,
                            });
                            let _ = reply.send(Ok((id, answer)));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Some(Command::Publish { offer, sink, reply }) => {
                    if sessions.len() >= MAX_SESSIONS {
                        let _ = reply.send(Err(WebRtcError::Full));
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    match accept(id, &offer, announced, sink) {
                        Ok((session, answer)) => {
                            sessions.push(session);
                            let _ = reply.send(Ok((id, answer)));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Some(Command::Close { id, reply }) => {
                    let found = sessions.iter_mut().find(|s| s.id == id);
                    let known = found.is_some();
                    if let Some(s) = found {
                        s.rtc.disconnect();
                        s.ended = Some("closed");
                    }
                    let _ = reply.send(known);
                }
            },
            () = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                for s in &mut sessions {
                    if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                        debug!(session = s.id, error = %e, "WebRTC timeout handling failed");
                    }
                }
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
