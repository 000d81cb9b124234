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

enum Command {
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
        tokio::spawn(run(socket, bound, announced, rx));
        Ok(Self {
            commands,
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

/// One publisher.
struct Session {
    id: SessionId,
    rtc: Rtc,
    sink: Box<dyn MediaSink>,
    video: AccessUnitIngest,
    audio_announced: bool,
    ended: Option<&'static str>,
}

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
        match event {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.ended = Some("disconnected");
            }
            Event::Connected => info!(session = self.id, "WebRTC publisher connected"),
            Event::MediaData(d) => match d.params.spec().codec {
                Codec::H264 => {
                    let ticks = d.time.rebase(str0m::media::Frequency::NINETY_KHZ).numer();
                    let pts = MediaTime::new(ticks as i64, Timescale::MPEG_TS);
                    for ev in self.video.push_annexb(&d.data, pts, pts) {
                        self.sink.event(ev);
                    }
                }
                Codec::Opus => {
                    if !self.audio_announced {
                        self.audio_announced = true;
                        self.sink.event(IngestEvent::Track {
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
                    self.sink.event(IngestEvent::Frame {
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
            },
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
            sink,
            video: AccessUnitIngest::new(VIDEO_TRACK, VideoCodec::H264),
            audio_announced: false,
            ended: None,
        },
        answer,
    ))
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

/// The session task.
async fn run(
    socket: UdpSocket,
    bound: SocketAddr,
    announced: SocketAddr,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut sessions: Vec<Session> = Vec::new();
    let mut next_id: SessionId = 1;
    let mut buf = vec![0u8; 2048];
    loop {
        let mut next = Instant::now() + Duration::from_millis(100);
        for s in &mut sessions {
            s.drain(&socket, &mut next);
        }
        sessions.retain_mut(|s| match s.ended {
            Some(reason) => {
                info!(session = s.id, reason, "WebRTC session ended");
                s.sink.ended(reason);
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
            command = commands.recv() => match command {
                None => return,
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
