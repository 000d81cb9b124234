//! The origin's HTTP front: LL-HLS playlists, parts and segments, metrics,
//! health, and the demo player page. HTTP/1.1 and HTTP/2 (hyper; h2 over
//! TLS by ALPN, cleartext h2 by prior knowledge).
//!
//! URL layout of a stream NAME (every URI is reachable from the first):
//! - `/live/NAME/index.m3u8` — multivariant playlist
//! - `/live/NAME/R.m3u8` — media playlist of rendition `R`, with the
//!   delivery directives `_HLS_msn`, `_HLS_part`, `_HLS_skip` (RFC 8216bis
//!   §6.2.5). `R` is `video` and `audio` for the first video and audio
//!   track, then `video1`, `video2`, … and `audio1`, `audio2`, … in the
//!   order the tracks appeared ([`Rendition::name`]).
//! - `/live/NAME/R/SESSION/init{N}.mp4`, `part{MSN}.{I}.m4s`,
//!   `seg{MSN}.m4s` — CMAF init segment, parts, segments of rendition `R`
//!   in publisher session `SESSION` ([`Stream::session`], lower-case hex).
//!   These are served `immutable`; a stream published again under the same
//!   name gets a new `SESSION`, and the old session's URIs answer 404.
//!
//! Handlers read the stream's immutable snapshots (see
//! [`crate::streams`]); no handler takes a lock the packager holds.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{
    body::{Body as _, Incoming},
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use livestack_hls::{BlockDecision, DeliveryDirectives, PartLookup, Resource, blocking_timeout};
use livestack_packager::{Rendition, RenditionSnapshot};
use tokio::{net::TcpListener, sync::watch, time::Instant};
use tracing::{debug, warn};

use crate::{
    metrics::Metrics,
    streams::{Stream, Streams},
};

/// Body type of every response.
pub type Body = Full<Bytes>;

/// Shared state of the HTTP handlers.
#[derive(Debug)]
pub struct HttpState {
    /// The streams served.
    pub streams: Arc<Streams>,
    /// Metrics, also served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// This node (viewer accounting, control-plane metrics).
    pub node: Arc<crate::cluster::Node>,
    /// Connection caps and timeouts, shared by the HTTP and HTTPS
    /// listeners.
    pub admission: Arc<livestack_listener::Admission>,
    /// Who may read (see [`AccessConfig`](crate::config::AccessConfig)).
    pub access: crate::config::AccessConfig,
    /// Requests waiting for media, per client address (blocking playlist
    /// reloads, preload-hinted parts), capped by
    /// [`max_held_requests_per_address`](livestack_listener::ListenerLimits::max_held_requests_per_address).
    pub held: Arc<livestack_listener::HeldRequests>,
    /// SHA-256 of the HTTPS certificate, lower-case hex, served at
    /// `/certificate.sha256` (`None`: no HTTPS, 404).
    pub certificate_sha256: Option<String>,
    /// UDP port of the Media over QUIC listener, for `/moq.json` (`None`:
    /// not enabled).
    pub webtransport_port: Option<u16>,
    /// Pulls streams other origins hold (`None`: relay disabled).
    pub relay: Option<Arc<crate::relay::Relay>>,
    /// WHIP ingest (`None`: no `--webrtc` listener).
    pub whip: Option<Arc<crate::webrtc::Whip>>,
}

/// Whether a request carries the configured edge credential.
fn from_edge(req: &http::request::Parts, access: &crate::config::AccessConfig) -> bool {
    let Some(configured) = &access.edge_credential else {
        return false;
    };
    req.headers
        .get(livestack_tokens::EDGE_CREDENTIAL_HEADER)
        .is_some_and(|v| {
            livestack_tokens::edge_credential_matches(v.as_bytes(), configured.as_bytes())
        })
}

const PLAYER_HTML: &str = include_str!("../assets/player.html");
const HLS_JS: &[u8] = include_bytes!("../assets/hls.min.js");
const MOQ_HTML: &str = include_str!("../assets/moq.html");
/// The WebRTC page: publish from a camera over WHIP, watch over WHEP.
const WEBRTC_HTML: &str = include_str!("../assets/webrtc.html");
/// The SFU room demo page (`/room.html?room=ROOM&name=NAME`).
const ROOM_HTML: &str = include_str!("../assets/room.html");
const MOQ_WATCH_JS: &[u8] = include_bytes!("../assets/moq-watch.js");

/// Longest wait for a stream's first part before `index.m3u8` gives up (the
/// publisher just connected; the first GOP is on its way).
const FIRST_PART_WAIT: Duration = Duration::from_secs(8);

/// Serves HTTP on `listener` until the task is dropped; with `tls`, every
/// connection is a TLS handshake first (ALPN `h2`, `http/1.1`). `alt_svc`
/// is added to every response (RFC 7838 §3: `h3=":PORT"` when the same
/// port serves HTTP/3 on UDP).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    alt_svc: Option<HeaderValue>,
    state: Arc<HttpState>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(admitted) = state.admission.admit(peer.ip()) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let alt_svc = alt_svc.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let limits = *state.admission.limits();
            let touched = Touched::default();
            let svc = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                let touched = touched.clone();
                let alt_svc = alt_svc.clone();
                async move {
                    let (head, body) = req.into_parts();
                    let mut resp = match &state.whip {
                        Some(whip)
                            if head.uri.path().starts_with("/whip/")
                                || head.uri.path().starts_with("/whep/")
                                || head.uri.path().starts_with("/rooms/") =>
                        {
                            whip.handle(&head, body).await
                        }
                        _ => answer(&head, peer, &state, &touched).await,
                    };
                    if let Some(alt_svc) = alt_svc {
                        resp.headers_mut().insert(header::ALT_SVC, alt_svc);
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let builder = limits.builder();
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(io)) => {
                            builder
                                .serve_connection(TokioIo::new(limits.guard(io)), svc)
                                .await
                        }
                        Ok(Err(e)) => {
                            debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    builder
                        .serve_connection(TokioIo::new(limits.guard(tcp)), svc)
                        .await
                }
            };
            if let Err(e) = result {
                debug!(error = %e, peer = %livestack_listener::ClientAddr::from(peer), "connection ended with error");
            }
        });
    }
}

/// Streams a connection fetched and when it last told the node's viewer
/// registry: the shared registry (one lock for the node) is touched at most
/// once per [`VIEWER_TOUCH`] per stream and connection, not once per
/// response. One per connection (TCP or QUIC).
pub(crate) type Touched = Arc<std::sync::Mutex<Vec<(String, Instant)>>>;

/// Answers one request head from `peer` on a connection whose registry
/// touches are `touched`, whatever the HTTP version: routes it, counts the
/// bytes sent and refreshes the viewer registry.
pub(crate) async fn answer(
    head: &http::request::Parts,
    peer: SocketAddr,
    state: &HttpState,
    touched: &Touched,
) -> Response<Body> {
    let resp = handle_head(head, Some(peer.ip()), state).await;
    let sent = resp.body().size_hint().exact().unwrap_or(0);
    state.metrics.http_sent_bytes.inc_by(sent);
    let stream = head
        .uri
        .path()
        .strip_prefix("/live/")
        .and_then(|r| r.split('/').next());
    if let Some(stream) = stream
        && resp.status().is_success()
        && touch_due(touched, stream)
    {
        state.node.viewers.touch(stream, peer);
    }
    resp
}

/// How often one connection refreshes its entry in the node's viewer
/// registry per stream; well inside [`crate::cluster::VIEWER_WINDOW`].
const VIEWER_TOUCH: Duration = Duration::from_secs(1);

/// True when this connection should refresh `stream` in the viewer registry
/// now (first fetch, or [`VIEWER_TOUCH`] since the last refresh). The lock
/// is the connection's own, uncontended but for HTTP/2 multiplexing.
fn touch_due(touched: &std::sync::Mutex<Vec<(String, Instant)>>, stream: &str) -> bool {
    let now = Instant::now();
    let mut touched = touched
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match touched.iter_mut().find(|(s, _)| s == stream) {
        Some((_, at)) if now.duration_since(*at) < VIEWER_TOUCH => false,
        Some((_, at)) => {
            *at = now;
            true
        }
        None => {
            // A connection fetches from a handful of streams at most; an
            // edge multiplexing many is bounded by forgetting the oldest.
            if touched.len() >= 64 {
                touched.remove(0);
            }
            touched.push((stream.to_owned(), now));
            true
        }
    }
}

/// Binds `addr` and returns the listener (so callers learn the port).
///
/// # Errors
/// The bind error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// A response with the origin's fixed headers. The header values are
/// `'static` so that building them copies and allocates nothing
/// ([`HeaderValue::from_static`]); the header map itself is one allocation.
fn response(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: Bytes,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.reserve(3);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn error(status: StatusCode, reason: &str) -> Response<Body> {
    response(
        status,
        "text/plain; charset=utf-8",
        "no-store",
        Bytes::from(format!("{reason}\n")),
    )
}

/// Route label for metrics.
fn route_of(path: &str) -> &'static str {
    if path.ends_with(".m3u8") {
        "playlist"
    } else if path.ends_with(".m4s") && path.contains("/part") {
        "part"
    } else if path.ends_with(".m4s") {
        "segment"
    } else if path.ends_with(".mp4") {
        "init"
    } else {
        "other"
    }
}

/// Handles one request.
pub async fn handle(req: Request<Incoming>, state: &HttpState) -> Response<Body> {
    let (head, _body) = req.into_parts();
    handle_head(&head, None, state).await
}

/// Handles one request by its head (no handler reads a body). Borrows the
/// path and query from the request: nothing is copied per request.
async fn handle_head(
    req: &http::request::Parts,
    peer: Option<std::net::IpAddr>,
    state: &HttpState,
) -> Response<Body> {
    let path = req.uri.path();
    let query = req.uri.query();
    let head = req.method == Method::HEAD;
    let mut resp = match req.method {
        Method::GET | Method::HEAD => {
            route(path, query, peer, from_edge(req, &state.access), state).await
        }
        Method::OPTIONS => {
            let mut r = response(
                StatusCode::NO_CONTENT,
                "text/plain",
                "max-age=86400",
                Bytes::new(),
            );
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("*"),
            );
            r
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "only GET, HEAD and OPTIONS"),
    };
    state
        .metrics
        .count_http_response(route_of(path), resp.status().as_u16());
    if head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

async fn route(
    path: &str,
    query: Option<&str>,
    peer: Option<std::net::IpAddr>,
    from_edge: bool,
    state: &HttpState,
) -> Response<Body> {
    let closed = state.access.closed && !from_edge;
    if closed && matches!(path, "/metrics" | "/streams") {
        return error(
            StatusCode::UNAUTHORIZED,
            "this origin is closed to all but its edges (metrics: on the admin listener)",
        );
    }
    match path {
        "/certificate.sha256" => {
            return match &state.certificate_sha256 {
                Some(hex) => response(
                    StatusCode::OK,
                    "text/plain",
                    "no-store",
                    Bytes::from(format!("{hex}\n")),
                ),
                None => error(StatusCode::NOT_FOUND, "no HTTPS certificate"),
            };
        }
        "/healthz" => {
            return response(
                StatusCode::OK,
                "text/plain",
                "no-store",
                Bytes::from_static(b"ok\n"),
            );
        }
        "/metrics" => {
            return response(
                StatusCode::OK,
                crate::metrics::CONTENT_TYPE,
                "no-store",
                Bytes::from(state.metrics.exposition(&state.node)),
            );
        }
        "/" | "/player.html" => {
            return response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "no-cache",
                Bytes::from_static(PLAYER_HTML.as_bytes()),
            );
        }
        "/favicon.ico" => {
            return response(
                StatusCode::NO_CONTENT,
                "image/x-icon",
                "public, max-age=86400",
                Bytes::new(),
            );
        }
        "/webrtc.html" => {
            return response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "no-cache",
                Bytes::from_static(WEBRTC_HTML.as_bytes()),
            );
        }
        "/room.html" => {
            return response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "no-cache",
                Bytes::from_static(ROOM_HTML.as_bytes()),
            );
        }
        "/moq.html" => {
            return response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "no-cache",
                Bytes::from_static(MOQ_HTML.as_bytes()),
            );
        }
        "/moq-watch.js" => {
            return response(
                StatusCode::OK,
                "text/javascript",
                "public, max-age=86400",
                Bytes::from_static(MOQ_WATCH_JS),
            );
        }
        "/moq.json" => {
            let body = format!(
                "{{\"port\":{},\"certificateSha256\":{}}}",
                state
                    .webtransport_port
                    .map_or_else(|| "null".to_owned(), |p| p.to_string()),
                state
                    .certificate_sha256
                    .as_ref()
                    .map_or_else(|| "null".to_owned(), |h| format!("\"{h}\"")),
            );
            return response(
                StatusCode::OK,
                "application/json",
                "no-store",
                Bytes::from(body),
            );
        }
        "/hls.min.js" => {
            return response(
                StatusCode::OK,
                "text/javascript",
                "public, max-age=86400",
                Bytes::from_static(HLS_JS),
            );
        }
        "/streams" => {
            let names = state.streams.live_names();
            let body = format!(
                "[{}]",
                names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            return response(
                StatusCode::OK,
                "application/json",
                "no-store",
                Bytes::from(body),
            );
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/live/") else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let mut parts = rest.splitn(3, '/');
    let (Some(name), Some(file)) = (parts.next(), parts.next()) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let sub = parts.next();
    // The edge verified the viewer; otherwise streams with play keys need
    // one (`token` query parameter; the edge's extractor, percent-decoded
    // as everywhere), and a closed origin needs it for every stream. Keys
    // are cached: no control-plane round trip per request.
    let credential = livestack_tokens::request_token(query, None);
    let authorized = if from_edge {
        Ok(())
    } else if closed {
        state
            .node
            .authorize_play_strict(name, credential.as_deref())
            .await
    } else {
        state.node.authorize_play(name, credential.as_deref()).await
    };
    if let Err(e) = authorized {
        let status = match e {
            crate::control::ControlError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            crate::control::ControlError::Forbidden { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        return error(status, &e.to_string());
    }
    // Held here, or pulled from the origin that holds it (an ended stream
    // here may be live there again).
    let stream = match state.streams.get(name) {
        Some(s) if !s.ended() => Some(s),
        local => match &state.relay {
            Some(relay) => relay.stream(name).await.or(local),
            None => local,
        },
    };
    let Some(stream) = stream else {
        return error(StatusCode::NOT_FOUND, "no such live stream");
    };
    match (file, sub) {
        ("index.m3u8", None) => multivariant(&stream).await,
        (f, None) => match f.strip_suffix(".m3u8").and_then(Rendition::parse) {
            Some(r) => media_playlist(&stream, r, query, peer, state).await,
            None => error(StatusCode::NOT_FOUND, "not found"),
        },
        (dir, Some(sub)) => {
            let Some(r) = Rendition::parse(dir) else {
                return error(StatusCode::NOT_FOUND, "not found");
            };
            let Some((session, f)) = sub.split_once('/') else {
                return error(StatusCode::NOT_FOUND, "not found");
            };
            if parse_session(session) != Some(stream.session) {
                return error(
                    StatusCode::NOT_FOUND,
                    "no such session of this stream (it was published again)",
                );
            }
            media_file(&stream, r, f, peer, state).await
        }
    }
}

/// Counts a request that is about to wait in its address's held requests
/// (once per request); `Some` is the answer when the address holds
/// [`max_held_requests_per_address`](livestack_listener::ListenerLimits::max_held_requests_per_address)
/// already: 429 with `Retry-After: 1` (RFC 6585 §4).
fn hold(
    state: &HttpState,
    peer: Option<std::net::IpAddr>,
    held: &mut Option<livestack_listener::Held>,
) -> Option<Response<Body>> {
    // Requests without a peer address (in-process callers) are not capped.
    let peer = peer?;
    if held.is_none() {
        match state.held.hold(peer) {
            Some(h) => *held = Some(h),
            None => {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "this address holds as many waiting requests as it may",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Some(r);
            }
        }
    }
    None
}

/// Parses the `SESSION` component of a media URI: lower-case hex without
/// leading zeros, as the playlists write it (one spelling per session, so
/// caches hold one entry per resource).
fn parse_session(s: &str) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= 16
        && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Waits for the next change of a watched snapshot or `deadline`; false on
/// timeout or when the stream's task is gone.
async fn wait_change<T>(rx: &mut watch::Receiver<T>, deadline: Instant) -> bool {
    matches!(
        tokio::time::timeout_at(deadline, rx.changed()).await,
        Ok(Ok(()))
    )
}

/// The watch of rendition `r` of `stream`, waiting until `deadline` for it
/// to appear. `Err` is the response to give instead.
async fn rendition_watch(
    stream: &Stream,
    r: Rendition,
    deadline: Option<Instant>,
) -> Result<watch::Receiver<Arc<RenditionSnapshot>>, Response<Body>> {
    let mut rx = stream.watch();
    loop {
        {
            let snap = rx.borrow_and_update();
            if let Some(w) = snap.renditions.get(&r) {
                return Ok(w.clone());
            }
            if snap.ended {
                return Err(error(StatusCode::NOT_FOUND, "no such rendition"));
            }
        }
        let Some(deadline) = deadline else {
            return Err(error(StatusCode::NOT_FOUND, "no such rendition"));
        };
        if !wait_change(&mut rx, deadline).await {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "stream is live but has no media for this rendition yet",
            ));
        }
    }
}

struct Blocked<'a>(&'a Metrics);
impl<'a> Blocked<'a> {
    fn new(m: &'a Metrics) -> Self {
        m.blocked_requests.inc();
        Self(m)
    }
}
impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.blocked_requests.dec();
    }
}

async fn multivariant(stream: &Stream) -> Response<Body> {
    let mut rx = stream.watch();
    let deadline = Instant::now() + FIRST_PART_WAIT;
    loop {
        let snap = rx.borrow_and_update().clone();
        if snap.ready || snap.ended {
            return match &snap.multivariant {
                Some(text) => response(
                    StatusCode::OK,
                    "application/vnd.apple.mpegurl",
                    "public, max-age=2",
                    text.clone(),
                ),
                None => error(StatusCode::NOT_FOUND, "stream ended before any media"),
            };
        }
        if !wait_change(&mut rx, deadline).await {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "stream is live but has no media yet",
            );
        }
    }
}

async fn media_playlist(
    stream: &Stream,
    rendition: Rendition,
    query: Option<&str>,
    peer: Option<std::net::IpAddr>,
    state: &HttpState,
) -> Response<Body> {
    let mut held = None;
    let directives = match DeliveryDirectives::parse(query) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let timeout = blocking_timeout(state.streams.target_duration());
    let deadline = Instant::now() + timeout.max(FIRST_PART_WAIT);
    let _blocked = directives.msn.map(|_| Blocked::new(&state.metrics));
    let mut rx = match rendition_watch(stream, rendition, Some(deadline)).await {
        Ok(rx) => rx,
        Err(resp) => return resp,
    };
    loop {
        let r = rx.borrow_and_update().clone();
        let ended = r.ended();
        let ready = match directives.msn {
            // Held until the first full segment: hls.js (and other
            // players) treat a playlist with parts only as empty.
            None => r.playlist.has_segment() || ended,
            Some(msn) => match r.playlist.check_block(msn, directives.part) {
                BlockDecision::Ready => true,
                BlockDecision::Wait => false,
                BlockDecision::TooFarAhead => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "_HLS_msn/_HLS_part too far ahead of the live edge",
                    );
                }
            },
        };
        if ready {
            let cache = if ended {
                // Not for long: a publisher that reconnects continues
                // this playlist under the same URL (and MSNs), and a cache
                // holding the EXT-X-ENDLIST would hide it.
                "public, max-age=1"
            } else if directives.msn.is_some() {
                // A blocking response for one (msn, part) never
                // changes: CDNs may keep it for the live window.
                "public, max-age=30"
            } else {
                "public, max-age=1"
            };
            let text = r.playlist_text(directives.skip);
            return response(StatusCode::OK, "application/vnd.apple.mpegurl", cache, text);
        }
        if let Some(refused) = hold(state, peer, &mut held) {
            return refused;
        }
        if !wait_change(&mut rx, deadline_for(&directives, deadline, timeout)).await {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the requested part did not become available in time",
            );
        }
    }
}

fn deadline_for(d: &DeliveryDirectives, first: Instant, timeout: Duration) -> Instant {
    if d.msn.is_some() {
        first.min(Instant::now() + timeout)
    } else {
        first
    }
}

async fn media_file(
    stream: &Stream,
    rendition: Rendition,
    file: &str,
    peer: Option<std::net::IpAddr>,
    state: &HttpState,
) -> Response<Body> {
    let mut held = None;
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    let resource = Resource::parse(file);
    if resource.is_none() {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let mut rx = match rendition_watch(stream, rendition, None).await {
        Ok(rx) => rx,
        Err(resp) => return resp,
    };
    let (msn, part) = match resource {
        Some(Resource::Init(n)) => {
            let init = rx.borrow().playlist.init(n);
            return match init {
                Some(b) => response(StatusCode::OK, "video/mp4", IMMUTABLE, b),
                None => error(StatusCode::NOT_FOUND, "no such init segment"),
            };
        }
        Some(Resource::Segment(msn)) => {
            let segment = rx.borrow().playlist.segment(msn);
            return match segment {
                Some(b) => response(StatusCode::OK, "video/iso.segment", IMMUTABLE, b),
                None => error(StatusCode::NOT_FOUND, "no such segment"),
            };
        }
        Some(Resource::Part { msn, index }) => (msn, index),
        None => return error(StatusCode::NOT_FOUND, "not found"),
    };
    let timeout = blocking_timeout(state.streams.target_duration());
    let deadline = Instant::now() + timeout;
    let mut blocked = None;
    loop {
        let r = rx.borrow_and_update().clone();
        match r.playlist.part(msn, part) {
            PartLookup::Available(b) => {
                return response(StatusCode::OK, "video/iso.segment", IMMUTABLE, b);
            }
            PartLookup::Pending if !r.ended() => {
                if blocked.is_none() {
                    blocked = Some(Blocked::new(&state.metrics));
                }
            }
            _ => return error(StatusCode::NOT_FOUND, "no such part"),
        }
        if let Some(refused) = hold(state, peer, &mut held) {
            return refused;
        }
        if !wait_change(&mut rx, deadline).await {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the hinted part did not become available in time",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_session;

    #[test]
    fn session_components_have_one_spelling() {
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("2a", Some(42)),
            ("19af3c2b1e0", Some(0x19a_f3c2_b1e0)),
            ("ffffffffffffffff", Some(u64::MAX)),
            ("", None),
            ("02a", None),
            ("2A", None),
            ("+2a", None),
            ("2a ", None),
            ("10000000000000000", None),
            ("%32a", None),
        ];
        for &(text, want) in table {
            assert_eq!(parse_session(text), want, "{text:?}");
        }
    }
}
