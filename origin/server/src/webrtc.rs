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
//! (`livestack_sfu` docs).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, atomic::Ordering},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use livestack_media::ingest::IngestEvent;
use livestack_sfu::{MAX_OFFER_BYTES, MediaSink, SessionId, WebRtc, WebRtcError};
use tracing::{info, warn};

use crate::{
    cluster::{PublishTicket, Refusal},
    control::ControlError,
    fanout::{self, BroadcastProducer, MediaEvent},
    metrics::{FrameKind, FrameLabels},
    srt::IngestContext,
};

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

/// The WHIP endpoint of an origin.
pub struct Whip {
    webrtc: WebRtc,
    ctx: Arc<IngestContext>,
    resources: Mutex<HashMap<String, Resource>>,
}

impl std::fmt::Debug for Whip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whip")
            .field("udp", &self.webrtc.local_addr())
            .finish_non_exhaustive()
    }
}

impl Whip {
    /// A WHIP endpoint publishing through `ctx`, its media on `webrtc`.
    pub fn new(webrtc: WebRtc, ctx: Arc<IngestContext>) -> Arc<Self> {
        Arc::new(Self {
            webrtc,
            ctx,
            resources: Mutex::default(),
        })
    }

    /// The WebRTC UDP address.
    pub fn udp_addr(&self) -> std::net::SocketAddr {
        self.webrtc.local_addr()
    }

    /// Answers a request whose path starts with `/whip/`.
    pub async fn handle(
        &self,
        head: &http::request::Parts,
        body: Incoming,
    ) -> http::Response<Body> {
        let path = head.uri.path();
        let rest = path.strip_prefix("/whip/").unwrap_or_default();
        let token = bearer(head);
        match (&head.method, rest.split_once('/')) {
            (&Method::POST, None) if !rest.is_empty() => self.post(rest, head, body, token).await,
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

    async fn post(
        &self,
        name: &str,
        head: &http::request::Parts,
        body: Incoming,
        token: Option<String>,
    ) -> http::Response<Body> {
        let sdp = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
        if !sdp {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a WHIP offer is application/sdp",
            );
        }
        let offer =
            match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_OFFER_BYTES).collect())
                .await
            {
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(_)) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "offer over 64 KiB"),
                Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "offer not received in time"),
            };
        let Ok(offer) = std::str::from_utf8(&offer) else {
            return plain(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
        };
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
                return match e {
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
                };
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
        };
        match self.webrtc.publish(offer, Box::new(sink)).await {
            Ok((session, answer)) => {
                let id = format!("{session:x}");
                self.resources
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        id.clone(),
                        Resource {
                            name: name.to_owned(),
                            session,
                            token,
                        },
                    );
                info!(stream = %name, session, "WHIP publisher");
                let mut r = http::Response::new(Full::new(Bytes::from(answer)));
                *r.status_mut() = StatusCode::CREATED;
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/sdp"),
                );
                if let Ok(v) = HeaderValue::from_str(&format!("/whip/{name}/{id}")) {
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
