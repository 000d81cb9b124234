//! WHIP ingest (RFC 9725) on the origin's HTTP listeners, over
//! [`livestack_sfu`]: a browser or encoder publishing with WebRTC is a
//! publisher like an SRT one, and its stream plays over LL-HLS, MoQ and
//! the relay.
//!
//! | request | answer |
//! |---|---|
//! | `POST /whip/NAME`, `Content-Type: application/sdp`, offer body, `Authorization: Bearer T` (or `?token=T`) | `201 Created`, SDP answer, `Location: /whip/NAME/ID`, `ETag` |
//! | `DELETE /whip/NAME/ID` with the same token | `200`; the stream ends |
//! | `PATCH /whip/NAME/ID` | `405`: no trickle ICE and no ICE restart (the answer carries the server's only candidate; clients send complete offers) |
//!
//! Refusals: 400 (bad SDP, with the reason), 401/403 (token), 404 (unknown
//! session), 409 (the name is live elsewhere), 413 (offer over 64 KiB),
//! 415 (not `application/sdp`), 503 + `Retry-After` (publisher cap, WebRTC
//! sessions full, control plane down). Admission is the SRT one
//! ([`Node::begin_publish`](crate::cluster::Node::begin_publish): stream
//! keys or the edge's publish session token, placement, the publisher cap
//! shared with SRT and MoQ).
//!
//! The media: H.264 passthrough into CMAF, Opus carried in CMAF
//! (`livestack_sfu` docs). WHEP viewers get H.264 passed through and Opus:
//! passed through from a WHIP publisher, transcoded from AAC (SRT and MoQ
//! publishers) once per broadcast by [`audio`].

pub mod audio;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, atomic::Ordering},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use livestack_media::{
    ingest::IngestEvent,
    model::{AudioCodec, Timescale, TrackParams, VideoCodec},
};
use livestack_sfu::{MAX_OFFER_BYTES, MediaSink, OutFrame, SessionId, Viewer, WebRtc, WebRtcError};
use tracing::{info, warn};

use crate::{
    cluster::{PublishTicket, Refusal},
    control::ControlError,
    fanout::{self, BroadcastProducer, BroadcastSubscriber, MediaEvent, Received},
    metrics::{FrameKind, FrameLabels},
    srt::IngestContext,
};

/// How long a WHEP viewer has to connect before its session is given up.
pub const VIEWER_READY: Duration = Duration::from_secs(15);

/// How long a WHIP offer body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

type Body = Full<Bytes>;

/// One WHIP session, as its `Location` names it.
struct Resource {
    name: String,
    session: SessionId,
    /// The credential the session was created with: every later call must
    /// present it.
    token: Option<String>,
}

/// The WHIP and WHEP endpoints of an origin.
pub struct Whip {
    webrtc: WebRtc,
    ctx: Arc<IngestContext>,
    resources: Mutex<HashMap<String, Resource>>,
    /// Every broadcast's relay, by name, for WHEP viewers.
    broadcasts: Arc<WhepEgress>,
    closed: bool,
    /// The WHIP publisher session of each stream published here.
    publishers: Arc<Mutex<HashMap<String, SessionId>>>,
    /// AAC to Opus for WHEP viewers, one transcoder per broadcast.
    transcodes: Arc<audio::AudioTranscodes>,
}

/// Keeps each broadcast's relay handle so WHEP viewers can subscribe to
/// it (the newest session of a name replaces the older one).
#[derive(Debug, Default)]
pub struct WhepEgress {
    /// The publisher session and the relay of each name.
    subscribers: Mutex<HashMap<String, (u64, BroadcastSubscriber)>>,
}

/// Names of broadcasts kept for WHEP at most (ended ones are replaced by
/// their next session; beyond this, the map is cleared of all but live
/// names on the next start).
const MAX_BROADCASTS: usize = 4096;

impl crate::streams::Egress for WhepEgress {
    fn broadcast_started(
        &self,
        name: &str,
        session: u64,
        _source: &crate::streams::Source,
        media: &BroadcastSubscriber,
    ) {
        let mut map = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_BROADCASTS {
            map.clear();
        }
        map.insert(name.to_owned(), (session, media.clone()));
    }
}

impl std::fmt::Debug for Whip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whip")
            .field("udp", &self.webrtc.local_addr())
            .finish_non_exhaustive()
    }
}

impl Whip {
    /// WHIP and WHEP endpoints publishing through `ctx`, their media on
    /// `webrtc`; `closed` as
    /// [`AccessConfig::closed`](crate::config::AccessConfig::closed).
    pub fn new(webrtc: WebRtc, ctx: Arc<IngestContext>, closed: bool) -> Arc<Self> {
        let broadcasts = Arc::new(WhepEgress::default());
        ctx.streams.add_egress(broadcasts.clone());
        let transcodes = Arc::new(audio::AudioTranscodes::new(ctx.metrics.clone()));
        Arc::new(Self {
            webrtc,
            ctx,
            resources: Mutex::default(),
            broadcasts,
            closed,
            publishers: Arc::default(),
            transcodes,
        })
    }

    /// The WebRTC UDP address.
    pub fn udp_addr(&self) -> std::net::SocketAddr {
        self.webrtc.local_addr()
    }

    /// Answers a request whose path starts with `/whip/` or `/whep/`.
    pub async fn handle(
        &self,
        head: &http::request::Parts,
        body: Incoming,
    ) -> http::Response<Body> {
        let path = head.uri.path();
        let (play, rest) = match (path.strip_prefix("/whep/"), path.strip_prefix("/whip/")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return plain(StatusCode::NOT_FOUND, "not a WHIP or WHEP path"),
        };
        let token = bearer(head);
        match (&head.method, rest.split_once('/')) {
            (&Method::POST, None) if !rest.is_empty() => {
                let offer = match read_offer(head, body).await {
                    Ok(o) => o,
                    Err(r) => return r,
                };
                if play {
                    self.play(rest, &offer, token).await
                } else {
                    self.post(rest, &offer, token).await
                }
            }
            (&Method::DELETE, Some((name, id))) => self.delete(name, id, token).await,
            (&Method::PATCH, Some(_)) => {
                let mut r = plain(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "no trickle ICE or ICE restart: send a complete offer",
                );
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("DELETE"));
                r
            }
            _ => plain(StatusCode::NOT_FOUND, "not a WHIP endpoint or session"),
        }
    }

    /// A WHEP viewer of `name`.
    async fn play(&self, name: &str, offer: &str, token: Option<String>) -> http::Response<Body> {
        let node = &self.ctx.node;
        let allowed = if self.closed {
            node.authorize_play_strict(name, token.as_deref()).await
        } else {
            node.authorize_play(name, token.as_deref()).await
        };
        if let Err(e) = allowed {
            return refusal(&Refusal::Control(e));
        }
        let live = self.ctx.streams.get(name).is_some_and(|s| !s.ended());
        let media = self
            .broadcasts
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        let Some((session, media)) = media.filter(|_| live) else {
            return plain(StatusCode::NOT_FOUND, "no such live stream");
        };
        let source = self
            .publishers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        match self.webrtc.play(offer, source).await {
            Ok((viewer, answer)) => {
                let id = format!("{:x}", viewer.id);
                self.remember(&id, name, viewer.id, token);
                info!(stream = %name, session = viewer.id, "WHEP viewer");
                let context = ViewerContext {
                    transcodes: self.transcodes.clone(),
                    name: name.to_owned(),
                    session,
                };
                tokio::spawn(feed(viewer, media, context));
                created(&format!("/whep/{name}/{id}"), &id, answer)
            }
            Err(e @ (WebRtcError::BadOffer(_) | WebRtcError::UnsupportedCodecs)) => {
                plain(StatusCode::BAD_REQUEST, &e.to_string())
            }
            Err(e) => busy(&e.to_string()),
        }
    }

    fn remember(&self, id: &str, name: &str, session: SessionId, token: Option<String>) {
        self.resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id.to_owned(),
                Resource {
                    name: name.to_owned(),
                    session,
                    token,
                },
            );
    }

    async fn post(&self, name: &str, offer: &str, token: Option<String>) -> http::Response<Body> {
        let ctx = &self.ctx;
        if ctx.publishing.fetch_add(1, Ordering::AcqRel) >= ctx.limits.max_publishers {
            ctx.publishing.fetch_sub(1, Ordering::AcqRel);
            return busy("this node has as many publishers as it takes");
        }
        let ticket = match ctx.node.begin_publish(name, token.as_deref(), false).await {
            Ok(t) => t,
            Err(e) => {
                ctx.publishing.fetch_sub(1, Ordering::AcqRel);
                warn!(stream = %name, reason = %e, "WHIP publish refused");
                return refusal(&e);
            }
        };
        let (producer, subscriber) = fanout::broadcast();
        ctx.streams.start(name, &subscriber);
        drop(subscriber);
        ctx.metrics.publishers.inc();
        let sink = WhipSink {
            producer: Some(producer),
            ctx: ctx.clone(),
            ticket: Some(ticket),
            publishers: self.publishers.clone(),
            name: name.to_owned(),
        };
        match self.webrtc.publish(offer, Box::new(sink)).await {
            Ok((session, answer)) => {
                let id = format!("{session:x}");
                self.remember(&id, name, session, token);
                self.publishers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_owned(), session);
                info!(stream = %name, session, "WHIP publisher");
                created(&format!("/whip/{name}/{id}"), &id, answer)
            }
            Err(e @ (WebRtcError::BadOffer(_) | WebRtcError::UnsupportedCodecs)) => {
                plain(StatusCode::BAD_REQUEST, &e.to_string())
            }
            Err(e) => busy(&e.to_string()),
        }
    }

    async fn delete(&self, name: &str, id: &str, token: Option<String>) -> http::Response<Body> {
        let session = {
            let resources = self
                .resources
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match resources.get(id) {
                Some(r) if r.name == name => {
                    if r.token.is_some() && r.token != token {
                        return plain(StatusCode::UNAUTHORIZED, "the session's token is required");
                    }
                    r.session
                }
                _ => return plain(StatusCode::NOT_FOUND, "no such WHIP session"),
            }
        };
        self.resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if self.webrtc.close(session).await {
            plain(StatusCode::OK, "session ended")
        } else {
            plain(StatusCode::NOT_FOUND, "no such WHIP session")
        }
    }
}

/// The offer body: `application/sdp`, at most 64 KiB, within
/// [`BODY_TIMEOUT`]; else the refusal to answer.
async fn read_offer(
    head: &http::request::Parts,
    body: Incoming,
) -> Result<String, http::Response<Body>> {
    let sdp = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp {
        return Err(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an offer is application/sdp",
        ));
    }
    let offer =
        match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_OFFER_BYTES).collect())
            .await
        {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "offer over 64 KiB")),
            Err(_) => {
                return Err(plain(
                    StatusCode::REQUEST_TIMEOUT,
                    "offer not received in time",
                ));
            }
        };
    String::from_utf8(offer.to_vec())
        .map_err(|_| plain(StatusCode::BAD_REQUEST, "the offer is not UTF-8"))
}

/// The answer to a refused admission.
fn refusal(e: &Refusal) -> http::Response<Body> {
    match e {
        Refusal::Control(ControlError::Unauthorized { .. }) => {
            let mut r = plain(StatusCode::UNAUTHORIZED, &e.to_string());
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Refusal::Control(ControlError::Forbidden { .. }) => {
            plain(StatusCode::FORBIDDEN, &e.to_string())
        }
        Refusal::Control(ControlError::AlreadyLive { .. }) => {
            plain(StatusCode::CONFLICT, &e.to_string())
        }
        _ => busy(&e.to_string()),
    }
}

/// `201 Created` with the SDP `answer`, `Location` and `ETag`.
fn created(location: &str, id: &str, answer: String) -> http::Response<Body> {
    let mut r = http::Response::new(Full::new(Bytes::from(answer)));
    *r.status_mut() = StatusCode::CREATED;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{id}\"")) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag"),
    );
    r
}

/// What a WHEP viewer's feed needs besides its media: the broadcast's
/// shared AAC transcoder ([`audio`]) when its audio is AAC, and the
/// origin's metrics through it.
struct ViewerContext {
    transcodes: Arc<audio::AudioTranscodes>,
    name: String,
    /// The publisher session (a new one is a new transcoder).
    session: u64,
}

/// Feeds a WHEP viewer from a consumer of the broadcast: the first H.264
/// track as Annex B access units (parameter sets before each keyframe),
/// the first Opus track as is, else the first AAC track transcoded to Opus
/// (shared with the broadcast's other viewers). Ends with the broadcast or
/// the session.
async fn feed(mut viewer: Viewer, media: BroadcastSubscriber, context: ViewerContext) {
    // Subscribed once the viewer can receive: a late consumer starts at
    // each track's latest keyframe, which then reaches the viewer.
    if !viewer.ready(VIEWER_READY).await {
        return;
    }
    let mut consumer = media.subscribe();
    let mut video: Option<(u32, Vec<u8>)> = None;
    let mut audio: Option<u32> = None;
    let mut transcoded: Option<audio::TranscodedAudio> = None;
    let mut warned = false;
    loop {
        let received = tokio::select! {
            r = consumer.recv() => r,
            Some(p) = next_packet(&mut transcoded) => {
                viewer.send(OutFrame::Audio {
                    data: p.data,
                    rtp_time: rtp(p.pts, Timescale::HZ_48000),
                });
                continue;
            }
            _ = viewer.ended() => return,
        };
        match received {
            Received::Event(MediaEvent::Track { id, params }) => match params {
                TrackParams::Video(v)
                    if v.codec == VideoCodec::H264
                        && video.as_ref().is_none_or(|(t, _)| *t == id) =>
                {
                    video = Some((id, annexb_parameter_sets(&v.decoder_config)));
                }
                TrackParams::Audio(a) if a.codec == AudioCodec::Opus && audio.is_none() => {
                    audio = Some(id);
                }
                TrackParams::Audio(a)
                    if a.codec == AudioCodec::Aac && audio.is_none() && transcoded.is_none() =>
                {
                    transcoded = Some(context.transcodes.join(
                        &context.name,
                        context.session,
                        &media,
                    ));
                }
                _ => {}
            },
            Received::Event(MediaEvent::Frame { id, frame }) => {
                if let Some((track, sets)) = &video
                    && *track == id
                {
                    if frame.pts != frame.dts {
                        reordered(&context, &mut warned);
                    }
                    let rtp_time = rtp(frame.pts, Timescale::MPEG_TS);
                    let mut data = Vec::with_capacity(frame.data.len() + sets.len() + 16);
                    if frame.keyframe {
                        data.extend_from_slice(sets);
                    }
                    length_prefixed_to_annexb(&frame.data, &mut data);
                    viewer.send(OutFrame::Video {
                        data: Bytes::from(data),
                        rtp_time,
                        keyframe: frame.keyframe,
                    });
                } else if audio == Some(id) {
                    let rtp_time = rtp(frame.pts, Timescale::HZ_48000);
                    viewer.send(OutFrame::Audio {
                        data: frame.data,
                        rtp_time,
                    });
                }
            }
            Received::Event(MediaEvent::End) | Received::Closed => return,
            Received::Event(MediaEvent::Loss { .. }) | Received::Skipped { .. } => {}
        }
    }
}

/// A video frame with B-frame reordering (PTS ≠ DTS) goes to a WHEP
/// viewer: counted, and said once per viewer. WebRTC's H.264 has no
/// B-frames; Chromium decodes almost none of such a stream (14 frames in
/// 12 s here). The publisher fixes it (`-bf 0`, `-tune zerolatency`).
fn reordered(viewer: &ViewerContext, warned: &mut bool) {
    viewer
        .transcodes
        .metrics()
        .webrtc_reordered_video_frames
        .inc();
    if !std::mem::replace(warned, true) {
        warn!(
            stream = %viewer.name,
            "the video has B-frames, which WebRTC viewers cannot play: publish without (-bf 0, -tune zerolatency)"
        );
    }
}

/// The next packet of `transcoded`; never resolves without one (or once it
/// ended, which then leaves the viewer without audio).
async fn next_packet(
    transcoded: &mut Option<audio::TranscodedAudio>,
) -> Option<livestack_transcode::OpusPacket> {
    match transcoded {
        Some(t) => match t.recv().await {
            Some(p) => Some(p),
            None => {
                *transcoded = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// `t` on `clock` as an RTP time (negative times, which WebRTC cannot
/// carry, become 0).
fn rtp(t: livestack_media::model::MediaTime, clock: Timescale) -> u64 {
    t.rebase(clock)
        .map(|t| u64::try_from(t.ticks()).unwrap_or(0))
        .unwrap_or(0)
}

/// The SPS and PPS of an `avcC` record as Annex B.
fn annexb_parameter_sets(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok((_, sps, pps)) = livestack_media::h264::avcc_parameter_sets(record) {
        for nal in sps.into_iter().chain(pps) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    out
}

/// 4-byte length-prefixed NAL units appended to `out` with start codes; a
/// truncated unit ends the conversion.
fn length_prefixed_to_annexb(data: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    while let Some(len) = rest.get(..4) {
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(nal) = rest.get(4..4 + len) else {
            return;
        };
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        rest = &rest[4 + len..];
    }
}

/// The bearer token (`Authorization: Bearer T`), else `?token=`.
fn bearer(head: &http::request::Parts) -> Option<String> {
    let header = head
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match header {
        Some(t) => Some(t.to_owned()),
        None => livestack_tokens::request_token(head.uri.query(), None)
            .map(std::borrow::Cow::into_owned),
    }
}

fn plain(status: StatusCode, text: &str) -> http::Response<Body> {
    let mut r = http::Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// 503 with `Retry-After: 5`.
fn busy(text: &str) -> http::Response<Body> {
    let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, text);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// A WHIP publisher's media into its broadcast; ends the publish (placement,
/// publisher count) when the session ends or is dropped.
struct WhipSink {
    producer: Option<BroadcastProducer>,
    ctx: Arc<IngestContext>,
    ticket: Option<PublishTicket>,
    /// [`Whip::publishers`], to forget this stream's entry at the end.
    publishers: Arc<Mutex<HashMap<String, SessionId>>>,
    name: String,
}

impl MediaSink for WhipSink {
    fn event(&mut self, event: IngestEvent) {
        let Some(producer) = &self.producer else {
            return;
        };
        match event {
            IngestEvent::Track { id, params } => producer.send(MediaEvent::Track { id, params }),
            IngestEvent::Frame { id, frame } => {
                let kind = if id == livestack_sfu::AUDIO_TRACK {
                    FrameKind::Audio
                } else {
                    FrameKind::Video
                };
                self.ctx
                    .metrics
                    .frames
                    .get_or_create(&FrameLabels { kind })
                    .inc();
                producer.send(MediaEvent::Frame { id, frame });
            }
            _ => {}
        }
    }

    fn ended(&mut self, reason: &'static str) {
        self.finish(reason);
    }
}

impl WhipSink {
    fn finish(&mut self, reason: &'static str) {
        let Some(producer) = self.producer.take() else {
            return;
        };
        producer.send(MediaEvent::End);
        drop(producer);
        self.publishers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
        self.ctx.metrics.publishers.dec();
        self.ctx
            .metrics
            .sessions_ended
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
        self.ctx.publishing.fetch_sub(1, Ordering::AcqRel);
        if let Some(ticket) = self.ticket.take() {
            let node = self.ctx.node.clone();
            tokio::spawn(async move { node.end_publish(&ticket).await });
        }
        info!(reason, "WHIP publisher gone");
    }
}

impl Drop for WhipSink {
    fn drop(&mut self) {
        self.finish("closed");
    }
}
