//! WHIP ingest (RFC 9725) on the origin's HTTP listeners, over
//! [`livestack_sfu`]: a browser or encoder publishing with WebRTC is a
//! publisher like an SRT one, and its stream plays over LL-HLS, MoQ and
//! the relay.
//!
//! | request | answer |
//! |---|---|
//! | `POST /whip/NAME`, `Content-Type: application/sdp`, offer body, `Authorization: Bearer T` (or `?token=T`) | `201 Created`, SDP answer, `Location: /whip/NAME/ID`, `ETag` |
//! | `DELETE /whip/NAME/ID` with the same token | `200`; the stream ends |
//! | `PATCH /whip/NAME/ID`, `application/trickle-ice-sdpfrag` (RFC 8840), same token | `204`: trickled candidates added; `422` for an ICE restart (`If-Match: *` or a new `ice-ufrag`: not supported, start a new session); `412` for another session's `If-Match` |
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
use livestack_sfu::{
    Feed, FeedId, MAX_OFFER_BYTES, MediaSink, OutFrame, SessionId, WebRtc, WebRtcError,
};
use tracing::{info, warn};

use crate::{
    cluster::{Publish, PublishTicket, Refusal},
    control::ControlError,
    fanout::{self, BroadcastProducer, BroadcastSubscriber, MediaEvent, Received},
    metrics::{FrameKind, FrameLabels},
    srt::IngestContext,
};

/// How long a WHEP viewer has to connect before its session is closed.
pub const VIEWER_READY: Duration = Duration::from_secs(15);

/// How long a WHIP offer body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Body = Full<Bytes>;

/// One WHIP session, as its `Location` names it.
struct Resource {
    name: String,
    session: SessionId,
    /// The credential the session was created with: every later call must
    /// present it.
    token: Option<String>,
    /// The client's ICE username fragment (a PATCH with another one asks
    /// for an ICE restart).
    ice_ufrag: Option<String>,
}

/// The live sessions' resources by id; a session's entry goes when the
/// session ends, however it ends.
type Resources = Arc<Mutex<HashMap<String, Resource>>>;

/// The WHIP and WHEP endpoints of an origin, and its SFU rooms.
pub struct Whip {
    pub(crate) webrtc: WebRtc,
    ctx: Arc<IngestContext>,
    resources: Resources,
    /// Every broadcast's relay, by name, for WHEP viewers.
    broadcasts: Arc<WhepEgress>,
    closed: bool,
    /// AAC to Opus for WHEP viewers, one transcoder per broadcast.
    transcodes: Arc<audio::AudioTranscodes>,
    /// The WHIP publisher session of each stream published here.
    publishers: Arc<Mutex<HashMap<String, SessionId>>>,
    /// The SFU rooms held here.
    pub(crate) rooms: Arc<crate::rooms::Rooms>,
}

/// Keeps each broadcast's relay handle so WHEP viewers can subscribe to
/// it (the newest session of a name replaces the older one), and the
/// broadcast's WebRTC feed once it has a viewer.
#[derive(Debug, Default)]
pub struct WhepEgress {
    subscribers: Mutex<HashMap<String, WhepBroadcast>>,
}

/// A broadcast as WHEP viewers play it.
#[derive(Debug)]
struct WhepBroadcast {
    media: BroadcastSubscriber,
    /// The publisher session (a new one is a new transcoder).
    session: u64,
    /// Its feed ([`feed`] runs it from the first viewer to the broadcast's
    /// end; every viewer of the broadcast plays it).
    feed: Option<FeedId>,
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
        map.insert(
            name.to_owned(),
            WhepBroadcast {
                media: media.clone(),
                session,
                feed: None,
            },
        );
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
        Arc::new(Self {
            rooms: Arc::new(crate::rooms::Rooms::new(webrtc.clone())),
            transcodes: Arc::new(audio::AudioTranscodes::new(ctx.metrics.clone())),
            webrtc,
            ctx,
            resources: Resources::default(),
            broadcasts,
            closed,
            publishers: Arc::default(),
        })
    }

    /// The node (its control plane).
    pub(crate) fn node(&self) -> &crate::cluster::Node {
        &self.ctx.node
    }

    /// The WebRTC UDP address.
    pub fn udp_addr(&self) -> std::net::SocketAddr {
        self.webrtc.local_addr()
    }

    /// Answers a request whose path starts with `/whip/`, `/whep/` or
    /// `/rooms/`.
    ///
    /// Every answer allows any web origin (CORS `*`: the credentials are
    /// bearer tokens, never cookies), and `OPTIONS` answers the preflight
    /// a browser sends before a POST with an SDP body (`204`).
    pub async fn handle(
        &self,
        head: &http::request::Parts,
        body: Incoming,
    ) -> http::Response<Body> {
        let mut r = if head.method == Method::OPTIONS {
            preflight()
        } else {
            self.route(head, body).await
        };
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, ETag, Accept-Patch"),
        );
        r
    }

    async fn route(&self, head: &http::request::Parts, body: Incoming) -> http::Response<Body> {
        let path = head.uri.path();
        if let Some(rest) = path.strip_prefix("/rooms/") {
            return crate::rooms::handle(self, rest, head, body).await;
        }
        let (play, rest) = match (path.strip_prefix("/whep/"), path.strip_prefix("/whip/")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return plain(StatusCode::NOT_FOUND, "not a WHIP or WHEP path"),
        };
        let creds = Credentials::of(head);
        let token = creds.admitting();
        match (&head.method, rest.split_once('/')) {
            (&Method::POST, None) if !rest.is_empty() => {
                let offer = match read_offer(head, body).await {
                    Ok(o) => o,
                    Err(r) => return r,
                };
                if play {
                    self.play(rest, &offer, &creds).await
                } else {
                    match self
                        .publish(rest, &offer, token, Publish::over("whip"), None)
                        .await
                    {
                        Ok((session, answer)) => {
                            let id = format!("{session:x}");
                            created(&creds.location(&format!("/whip/{rest}/{id}")), &id, answer)
                        }
                        Err(r) => r,
                    }
                }
            }
            (&Method::DELETE, Some((name, id))) => self.delete(name, id, &creds).await,
            (&Method::PATCH, Some((name, id))) => self.patch(name, id, head, body, &creds).await,
            _ => plain(StatusCode::NOT_FOUND, "not a WHIP endpoint or session"),
        }
    }

    /// Authorizes a viewer of `name` (a stream, or a room) presenting
    /// `token`, as an LL-HLS request is; the refusal to answer otherwise.
    pub(crate) async fn authorize_play(
        &self,
        name: &str,
        token: Option<&str>,
    ) -> Result<(), http::Response<Body>> {
        let node = &self.ctx.node;
        let allowed = if self.closed {
            node.authorize_play_strict(name, token).await
        } else {
            node.authorize_play(name, token).await
        };
        allowed.map_err(|e| refusal(&Refusal::Control(e)))
    }

    /// A WHEP viewer of `name`.
    async fn play(&self, name: &str, offer: &str, creds: &Credentials) -> http::Response<Body> {
        let token = creds.admitting();
        if let Err(r) = self.authorize_play(name, token.as_deref()).await {
            return r;
        }
        match self.play_authorized(name, offer, token).await {
            Ok((id, answer)) => {
                created(&creds.location(&format!("/whep/{name}/{id}")), &id, answer)
            }
            Err(r) => r,
        }
    }

    /// A viewer of `name`, authorized already: the session's resource id
    /// and SDP answer, or the refusal to answer.
    pub(crate) async fn play_authorized(
        &self,
        name: &str,
        offer: &str,
        token: Option<String>,
    ) -> Result<(String, String), http::Response<Body>> {
        let live = self.ctx.streams.get(name).is_some_and(|s| !s.ended());
        let feed = {
            let mut map = self
                .broadcasts
                .subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match map.get_mut(name).filter(|_| live) {
                None => None,
                Some(WhepBroadcast { feed: Some(id), .. }) => Some(*id),
                Some(b) => {
                    // The broadcast's first viewer: one relay consumer for
                    // all of them from now on.
                    let feed = self.webrtc.feed();
                    let id = feed.id();
                    b.feed = Some(id);
                    let context = FeedContext {
                        transcodes: self.transcodes.clone(),
                        name: name.to_owned(),
                        session: b.session,
                        media: b.media.clone(),
                    };
                    tokio::spawn(run_feed(feed, b.media.subscribe(), context));
                    Some(id)
                }
            }
        };
        let Some(feed) = feed else {
            return Err(plain(StatusCode::NOT_FOUND, "no such live stream"));
        };
        let source = self
            .publishers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        match self.webrtc.play(offer, source, feed).await {
            Ok((mut viewer, answer)) => {
                let id = format!("{:x}", viewer.id);
                self.remember(&id, name, viewer.id, token, offer);
                info!(stream = %name, session = viewer.id, "WHEP viewer");
                let (webrtc, resources, key) =
                    (self.webrtc.clone(), self.resources.clone(), id.clone());
                tokio::spawn(async move {
                    if !viewer.ready(VIEWER_READY).await {
                        webrtc.close(viewer.id).await;
                    }
                    viewer.ended().await;
                    resources
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&key);
                });
                Ok((id, answer))
            }
            Err(e @ (WebRtcError::BadOffer(_) | WebRtcError::UnsupportedCodecs)) => {
                Err(plain(StatusCode::BAD_REQUEST, &e.to_string()))
            }
            Err(e) => Err(busy(&e.to_string())),
        }
    }

    fn remember(
        &self,
        id: &str,
        name: &str,
        session: SessionId,
        token: Option<String>,
        offer: &str,
    ) {
        let ice_ufrag = offer
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned);
        self.resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id.to_owned(),
                Resource {
                    name: name.to_owned(),
                    session,
                    token,
                    ice_ufrag,
                },
            );
    }

    /// A PATCH of session `name`/`id` (RFC 9725 §4.3.1): trickled
    /// candidates are added (`204`); an ICE restart (`If-Match: *` or a
    /// new `ice-ufrag`) is `422`, not supported; a stale `If-Match` is
    /// `412`; an unknown session `404`; a missing token `401`.
    pub(crate) async fn patch(
        &self,
        name: &str,
        id: &str,
        head: &http::request::Parts,
        body: Incoming,
        creds: &Credentials,
    ) -> http::Response<Body> {
        let (session, ice_ufrag) = match self.resource(name, id, creds) {
            Ok(found) => found,
            Err(refusal) => return refusal.answer(),
        };
        let if_match = head
            .headers
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if if_match == Some("*") {
            return plain(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ICE restart is not supported: start a new session",
            );
        }
        if let Some(tag) = if_match
            && tag != format!("\"{id}\"")
        {
            return plain(StatusCode::PRECONDITION_FAILED, "not this session's ETag");
        }
        let text = match read_body(head, body, "application/trickle-ice-sdpfrag").await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let fragment = match livestack_sfu::parse_sdpfrag(&text) {
            Ok(f) => f,
            Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        if fragment.ice_ufrag.is_some() && fragment.ice_ufrag != ice_ufrag {
            return plain(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ICE restart is not supported: start a new session",
            );
        }
        if self
            .webrtc
            .add_candidates(session, fragment.candidates)
            .await
        {
            let mut r = http::Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        } else {
            plain(StatusCode::NOT_FOUND, "no such WebRTC session")
        }
    }

    /// A publisher of broadcast `name`, admitted as `publish` says (a
    /// room participant's publication tells `member`): the session's
    /// session and SDP answer, or the refusal to answer.
    pub(crate) async fn publish(
        &self,
        name: &str,
        offer: &str,
        token: Option<String>,
        publish: Publish<'_>,
        member: Option<crate::rooms::Member>,
    ) -> Result<(SessionId, String), http::Response<Body>> {
        let ctx = &self.ctx;
        if ctx.publishing.fetch_add(1, Ordering::AcqRel) >= ctx.limits.max_publishers {
            ctx.publishing.fetch_sub(1, Ordering::AcqRel);
            return Err(busy("this node has as many publishers as it takes"));
        }
        let ticket = match ctx
            .node
            .begin_publish(name, token.as_deref(), publish)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                ctx.publishing.fetch_sub(1, Ordering::AcqRel);
                warn!(stream = %name, reason = %e, "WebRTC publish refused");
                return Err(refusal(&e));
            }
        };
        let (producer, subscriber) = fanout::broadcast();
        ctx.streams.start(name, &subscriber);
        drop(subscriber);
        ctx.metrics.publishers.inc();
        let resource = Arc::new(std::sync::OnceLock::new());
        let sink = WhipSink {
            producer: Some(producer),
            ctx: ctx.clone(),
            ticket: Some(ticket),
            publishers: self.publishers.clone(),
            name: name.to_owned(),
            member,
            resource: resource.clone(),
            resources: self.resources.clone(),
        };
        match self.webrtc.publish(offer, Box::new(sink)).await {
            Ok((session, answer)) => {
                let id = format!("{session:x}");
                self.remember(&id, name, session, token, offer);
                let _ = resource.set(id);
                self.publishers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_owned(), session);
                info!(stream = %name, session, protocol = publish.protocol, "WebRTC publisher");
                Ok((session, answer))
            }
            Err(e @ (WebRtcError::BadOffer(_) | WebRtcError::UnsupportedCodecs)) => {
                Err(plain(StatusCode::BAD_REQUEST, &e.to_string()))
            }
            Err(e) => Err(busy(&e.to_string())),
        }
    }

    /// The session whose resource is `name`/`id`, and its client's ICE
    /// username fragment, when `creds` open it; else the refusal:
    /// [`ResourceRefusal`].
    fn resource(
        &self,
        name: &str,
        id: &str,
        creds: &Credentials,
    ) -> Result<(SessionId, Option<String>), ResourceRefusal> {
        let resources = self
            .resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match resources.get(id) {
            Some(r) if r.name == name => {
                if creds.open(r.token.as_deref()) {
                    Ok((r.session, r.ice_ufrag.clone()))
                } else {
                    Err(ResourceRefusal::Unauthorized)
                }
            }
            _ => Err(ResourceRefusal::Unknown),
        }
    }

    /// Ends the session whose resource is `name`/`id` if `token` is the
    /// one it was created with.
    pub(crate) async fn delete(
        &self,
        name: &str,
        id: &str,
        creds: &Credentials,
    ) -> http::Response<Body> {
        let session = match self.resource(name, id, creds) {
            Ok((session, _)) => session,
            Err(refusal) => return refusal.answer(),
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
pub(crate) async fn read_offer(
    head: &http::request::Parts,
    body: Incoming,
) -> Result<String, http::Response<Body>> {
    read_body(head, body, "application/sdp").await
}

/// A body of media type `media_type`, at most 64 KiB, within
/// [`BODY_TIMEOUT`]; else the refusal to answer.
async fn read_body(
    head: &http::request::Parts,
    body: Incoming,
    media_type: &'static str,
) -> Result<String, http::Response<Body>> {
    let matches = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media_type));
    if !matches {
        return Err(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("the body is {media_type}"),
        ));
    }
    let offer =
        match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_OFFER_BYTES).collect())
            .await
        {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB")),
            Err(_) => {
                return Err(plain(
                    StatusCode::REQUEST_TIMEOUT,
                    "body not received in time",
                ));
            }
        };
    String::from_utf8(offer.to_vec())
        .map_err(|_| plain(StatusCode::BAD_REQUEST, "the body is not UTF-8"))
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
pub(crate) fn created(location: &str, id: &str, answer: String) -> http::Response<Body> {
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
    r
}

/// Feeds a broadcast's WHEP viewers from one consumer of it (a late
/// consumer starts at each track's latest keyframe; the feed keeps those
/// frames for viewers that connect later): every H.264 track as a layer
/// (simulcast, or an SRT publisher's renditions; each viewer gets the one
/// its bandwidth affords) of Annex B access units (parameter sets before
/// each keyframe), the first Opus track as is, else the first AAC track
/// transcoded to Opus ([`audio`]). Each frame is converted once, whatever
/// the number of viewers. Ends with the broadcast.
async fn run_feed(mut feed: Feed, mut consumer: fanout::BroadcastConsumer, context: FeedContext) {
    // Track id → its parameter sets in Annex B.
    let mut video: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut audio: Option<u32> = None;
    let mut transcoded: Option<audio::TranscodedAudio> = None;
    let mut warned = false;
    loop {
        let received = tokio::select! {
            r = consumer.recv() => r,
            Some(p) = next_packet(&mut transcoded) => {
                feed.send(OutFrame::Audio {
                    data: p.data.as_ref().into(),
                    rtp_time: rtp(p.pts, Timescale::HZ_48000),
                });
                continue;
            }
        };
        match received {
            Received::Event(MediaEvent::Track { id, params }) => match params {
                TrackParams::Video(v)
                    if v.codec == VideoCodec::H264
                        && (video.contains_key(&id) || video.len() < livestack_sfu::MAX_LAYERS) =>
                {
                    video.insert(id, annexb_parameter_sets(&v.decoder_config));
                }
                TrackParams::Audio(a) if a.codec == AudioCodec::Opus && audio.is_none() => {
                    audio = Some(id);
                    // A WHIP publisher's own Opus wins over a transcode.
                    transcoded = None;
                }
                TrackParams::Audio(a)
                    if a.codec == AudioCodec::Aac && audio.is_none() && transcoded.is_none() =>
                {
                    transcoded = Some(context.transcodes.join(
                        &context.name,
                        context.session,
                        &context.media,
                    ));
                }
                _ => {}
            },
            Received::Event(MediaEvent::Frame { id, frame }) => {
                if let Some(sets) = video.get(&id) {
                    if frame.pts != frame.dts {
                        reordered(&context, &mut warned);
                    }
                    let rtp_time = rtp(frame.pts, Timescale::MPEG_TS);
                    let mut data = Vec::with_capacity(frame.data.len() + sets.len() + 16);
                    if frame.keyframe {
                        data.extend_from_slice(sets);
                    }
                    length_prefixed_to_annexb(&frame.data, &mut data);
                    feed.send(OutFrame::Video {
                        data: data.into(),
                        rtp_time,
                        keyframe: frame.keyframe,
                        layer: id,
                    });
                } else if audio == Some(id) {
                    let rtp_time = rtp(frame.pts, Timescale::HZ_48000);
                    feed.send(OutFrame::Audio {
                        data: frame.data.as_ref().into(),
                        rtp_time,
                    });
                }
            }
            Received::Event(MediaEvent::End) | Received::Closed => return,
            Received::Event(MediaEvent::Loss { .. }) | Received::Skipped { .. } => {}
        }
    }
}

/// What a broadcast's feed needs besides its media: the shared AAC
/// transcoders ([`audio`]), through which the origin's metrics, and the
/// broadcast's name, publisher session and relay.
struct FeedContext {
    transcodes: Arc<audio::AudioTranscodes>,
    name: String,
    /// The publisher session (a new one is a new transcoder).
    session: u64,
    media: BroadcastSubscriber,
}

/// A video frame with B-frame reordering (PTS ≠ DTS) goes to WHEP
/// viewers: counted, and said once per feed. WebRTC's H.264 has no
/// B-frames; Chromium decodes almost none of such a stream (14 frames in
/// 12 s here). The publisher fixes it (`-bf 0`, `-tune zerolatency`).
fn reordered(context: &FeedContext, warned: &mut bool) {
    context
        .transcodes
        .metrics()
        .webrtc_reordered_video_frames
        .inc();
    if !std::mem::replace(warned, true) {
        warn!(
            stream = %context.name,
            "the video has B-frames, which WebRTC viewers cannot play: publish without (-bf 0, -tune zerolatency)"
        );
    }
}

/// The next packet of `transcoded`; never resolves without one (or once it
/// ended, which then leaves the viewers without audio).
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

/// Why a call on a session's resource is refused.
#[derive(Debug, Clone, Copy)]
enum ResourceRefusal {
    /// No such session (`404`).
    Unknown,
    /// Not the session's token (`401`).
    Unauthorized,
}

impl ResourceRefusal {
    fn answer(self) -> http::Response<Body> {
        match self {
            Self::Unknown => plain(StatusCode::NOT_FOUND, "no such WebRTC session"),
            Self::Unauthorized => {
                plain(StatusCode::UNAUTHORIZED, "the session's token is required")
            }
        }
    }
}

/// The credentials a request presents: `Authorization: Bearer T` and
/// `?token=T`.
///
/// The query wins when both are there: an edge's signaling redirects a
/// client (307) to this node with the session token it minted for it in
/// the query, and the client may keep sending its own token (for the
/// edge) in the header. A session created with a token from the query
/// gets that token in its `Location` too, and a later call presenting the
/// session's token either way is the session's.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    header: Option<String>,
    query: Option<String>,
}

impl Credentials {
    pub(crate) fn of(head: &http::request::Parts) -> Self {
        let header = head
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let query = livestack_tokens::request_token(head.uri.query(), None)
            .map(std::borrow::Cow::into_owned);
        Self { header, query }
    }

    /// The credential that admits a new session.
    pub(crate) fn admitting(&self) -> Option<String> {
        self.query.clone().or_else(|| self.header.clone())
    }

    /// True when these credentials open a session created with `token`.
    fn open(&self, token: Option<&str>) -> bool {
        token.is_none_or(|t| self.header.as_deref() == Some(t) || self.query.as_deref() == Some(t))
    }

    /// `path` as a session's `Location`: with the query's token, when the
    /// session was admitted by it.
    pub(crate) fn location(&self, path: &str) -> String {
        match &self.query {
            Some(t) => format!("{path}?token={}", percent_encode(t)),
            None => path.to_owned(),
        }
    }
}

/// `text` percent-encoded for a query value (RFC 3986 unreserved kept).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `204` to a CORS preflight: the methods and headers WHIP, WHEP and the
/// rooms take, cacheable 10 minutes; `Accept-Post` and `Accept-Patch`
/// name the bodies (RFC 9725 §4.1, RFC 8840).
fn preflight() -> http::Response<Body> {
    let mut r = http::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    for (name, value) in [
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET, POST, PATCH, DELETE, OPTIONS",
        ),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, If-Match",
        ),
        (header::ACCESS_CONTROL_MAX_AGE, "600"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        http::HeaderName::from_static("accept-post"),
        HeaderValue::from_static("application/sdp"),
    );
    h.insert(
        http::HeaderName::from_static("accept-patch"),
        HeaderValue::from_static("application/trickle-ice-sdpfrag"),
    );
    r
}

pub(crate) fn plain(status: StatusCode, text: &str) -> http::Response<Body> {
    let mut r = http::Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// 503 with `Retry-After: 5`.
pub(crate) fn busy(text: &str) -> http::Response<Body> {
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
    /// The room participant this publication is, if any.
    member: Option<crate::rooms::Member>,
    /// Its resource id, once answered, and [`Whip::resources`]: the
    /// entry goes with the session.
    resource: Arc<std::sync::OnceLock<String>>,
    resources: Resources,
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

    fn message(&mut self, text: &str) {
        if let Some(m) = &mut self.member {
            m.message(text);
        }
    }

    fn audio_level(&mut self, dbov: i8) {
        if let Some(m) = &mut self.member {
            m.audio_level(dbov);
        }
    }
}

impl WhipSink {
    fn finish(&mut self, reason: &'static str) {
        let Some(producer) = self.producer.take() else {
            return;
        };
        producer.send(MediaEvent::End);
        drop(producer);
        if let Some(id) = self.resource.get() {
            self.resources
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
        }
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
        if let Some(m) = self.member.take() {
            m.left(reason);
        }
        info!(reason, "WebRTC publisher gone");
    }
}

impl Drop for WhipSink {
    fn drop(&mut self) {
        self.finish("closed");
    }
}
