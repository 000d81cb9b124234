//! The origin's HTTP front: LL-HLS playlists, parts and segments, metrics,
//! health, and the demo player page. HTTP/1.1 and HTTP/2 (hyper; h2 over
//! TLS by ALPN, cleartext h2 by prior knowledge).
//!
//! URL layout of a stream NAME (every URI is reachable from the first):
//! - `/live/NAME/index.m3u8` — multivariant playlist
//! - `/live/NAME/video.m3u8`, `/live/NAME/audio.m3u8` — media playlists,
//!   with the delivery directives `_HLS_msn`, `_HLS_part`, `_HLS_skip`
//!   (RFC 8216bis §6.2.5)
//! - `/live/NAME/{video,audio}/init{N}.mp4`, `part{MSN}.{I}.m4s`,
//!   `seg{MSN}.m4s` — CMAF init segment, parts, segments

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{
    body::{Body as _, Incoming},
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use livestack_hls::{
    AudioRendition, BlockDecision, DeliveryDirectives, PartLookup, RenditionReport, Resource,
    Variant, blocking_timeout, render_multivariant,
};
use tokio::{net::TcpListener, time::Instant};
use tracing::{debug, warn};

use crate::{
    metrics::Metrics,
    packager::Rendition,
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
}

const PLAYER_HTML: &str = include_str!("../assets/player.html");
const HLS_JS: &[u8] = include_bytes!("../assets/hls.min.js");

/// Longest wait for a stream's first part before `index.m3u8` gives up (the
/// publisher just connected; the first GOP is on its way).
const FIRST_PART_WAIT: Duration = Duration::from_secs(8);

/// Serves HTTP on `listener` until the task is dropped; with `tls`, every
/// connection is a TLS handshake first (ALPN `h2`, `http/1.1`).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let stream = req
                        .uri()
                        .path()
                        .strip_prefix("/live/")
                        .and_then(|r| r.split('/').next())
                        .map(str::to_owned);
                    let resp = handle(req, &state).await;
                    let sent = resp.body().size_hint().exact().unwrap_or(0);
                    state.metrics.http_sent_bytes.inc_by(sent);
                    if let Some(stream) = stream
                        && resp.status().is_success()
                    {
                        state.node.viewers.touch(&stream, peer);
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(io) => builder.serve_connection(TokioIo::new(io), svc).await,
                    Err(e) => {
                        debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => builder.serve_connection(TokioIo::new(tcp), svc).await,
            };
            if let Err(e) = result {
                debug!(error = %e, %peer, "connection ended with error");
            }
        });
    }
}

/// Binds `addr` and returns the listener (so callers learn the port).
///
/// # Errors
/// The bind error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

fn response(status: StatusCode, content_type: &str, cache: &str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
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
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let head = req.method() == Method::HEAD;
    let mut resp = match *req.method() {
        Method::GET | Method::HEAD => route(&path, query.as_deref(), state).await,
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
        .http_responses
        .get_or_create(&vec![
            ("route", route_of(&path).to_owned()),
            ("status", resp.status().as_u16().to_string()),
        ])
        .inc();
    if head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

async fn route(path: &str, query: Option<&str>, state: &HttpState) -> Response<Body> {
    match path {
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
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                "no-store",
                Bytes::from(
                    state
                        .metrics
                        .encode_with(|out| state.node.client().encode_metrics(out)),
                ),
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
    let Some(stream) = state.streams.get(name) else {
        return error(StatusCode::NOT_FOUND, "no such live stream");
    };
    // Streams with play keys need one (`token` query parameter); cached,
    // no control-plane round trip per request.
    let credential = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    if let Err(e) = state.node.authorize_play(name, credential).await {
        let status = match e {
            crate::control::ControlError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            crate::control::ControlError::Forbidden { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        return error(status, &e.to_string());
    }
    match (file, sub) {
        ("index.m3u8", None) => multivariant(&stream).await,
        ("video.m3u8", None) => media_playlist(&stream, Rendition::Video, query, state).await,
        ("audio.m3u8", None) => media_playlist(&stream, Rendition::Audio, query, state).await,
        ("video", Some(f)) => media_file(&stream, Rendition::Video, f, state).await,
        ("audio", Some(f)) => media_file(&stream, Rendition::Audio, f, state).await,
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Waits for the next change of `stream` or `deadline`; false on timeout
/// or when the stream is gone.
async fn wait_change(rx: &mut tokio::sync::watch::Receiver<u64>, deadline: Instant) -> bool {
    matches!(
        tokio::time::timeout_at(deadline, rx.changed()).await,
        Ok(Ok(()))
    )
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
        {
            let st = stream.lock();
            if st.ready() || st.ended {
                let audio_group = "audio";
                let mut audio = Vec::new();
                let mut codecs = Vec::new();
                let mut bandwidth = 0;
                let mut average = 0;
                if let Some(v) = &st.video {
                    codecs.push(v.params.codec_string().to_owned());
                    bandwidth += v.bandwidth();
                    average += v.average_bps();
                }
                if let Some(a) = &st.audio {
                    codecs.push(a.params.codec_string().to_owned());
                    bandwidth += a.bandwidth();
                    average += a.average_bps();
                    if st.video.is_some() {
                        let channels = match &a.params {
                            livestack_media::model::TrackParams::Audio(p) => Some(p.channels),
                            _ => None,
                        };
                        audio.push(AudioRendition {
                            group_id: audio_group.into(),
                            name: "default".into(),
                            uri: "audio.m3u8".into(),
                            default: true,
                            language: None,
                            channels,
                        });
                    }
                }
                let (uri, resolution, frame_rate) = match &st.video {
                    Some(v) => match &v.params {
                        livestack_media::model::TrackParams::Video(p) => (
                            "video.m3u8",
                            Some((p.width, p.height)),
                            p.frame_rate
                                .filter(|(_, d)| *d > 0)
                                .map(|(n, d)| f64::from(n) / f64::from(d))
                                .or(st.measured_frame_rate),
                        ),
                        _ => ("video.m3u8", None, None),
                    },
                    None => ("audio.m3u8", None, None),
                };
                if st.video.is_none() && st.audio.is_none() {
                    return error(StatusCode::NOT_FOUND, "stream ended before any media");
                }
                let variant = Variant {
                    uri: uri.into(),
                    bandwidth: bandwidth.max(1),
                    average_bandwidth: (average > 0).then_some(average),
                    codecs: codecs.join(","),
                    resolution,
                    frame_rate,
                    audio_group: (!audio.is_empty()).then(|| audio_group.to_owned()),
                };
                let text = render_multivariant(&[variant], &audio);
                return response(
                    StatusCode::OK,
                    "application/vnd.apple.mpegurl",
                    "public, max-age=2",
                    Bytes::from(text),
                );
            }
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
    state: &HttpState,
) -> Response<Body> {
    let directives = match DeliveryDirectives::parse(query) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let timeout = blocking_timeout(state.streams.target_duration());
    let deadline = Instant::now() + timeout.max(FIRST_PART_WAIT);
    let mut rx = stream.watch_rendition(rendition);
    let _blocked = directives.msn.map(|_| Blocked::new(&state.metrics));
    loop {
        {
            let mut st = stream.lock();
            let ready = match st.rendition(rendition) {
                None if st.ended => return error(StatusCode::NOT_FOUND, "no such rendition"),
                None => false,
                Some(r) => match directives.msn {
                    // Held until the first full segment: hls.js (and other
                    // players) treat a playlist with parts only as empty.
                    None => r.playlist.has_segment() || st.ended,
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
                },
            };
            if ready {
                let other = match rendition {
                    Rendition::Video => Rendition::Audio,
                    Rendition::Audio => Rendition::Video,
                };
                let reports: Vec<RenditionReport> = st
                    .rendition(other)
                    .and_then(|o| {
                        o.playlist
                            .rendition_report(format!("{}.m3u8", other.name()))
                    })
                    .into_iter()
                    .collect();
                let cache = if st.ended {
                    "public, max-age=60"
                } else if directives.msn.is_some() {
                    // A blocking response for one (msn, part) never
                    // changes: CDNs may keep it for the live window.
                    "public, max-age=30"
                } else {
                    "public, max-age=1"
                };
                if let Some(r) = st.rendition_mut(rendition) {
                    let text = r.playlist_text(directives.skip, &reports);
                    return response(StatusCode::OK, "application/vnd.apple.mpegurl", cache, text);
                }
            }
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
    state: &HttpState,
) -> Response<Body> {
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    let (msn, part) = match Resource::parse(file) {
        Some(Resource::Init(n)) => {
            let st = stream.lock();
            return match st.rendition(rendition).and_then(|r| r.playlist.init(n)) {
                Some(b) => response(StatusCode::OK, "video/mp4", IMMUTABLE, b),
                None => error(StatusCode::NOT_FOUND, "no such init segment"),
            };
        }
        Some(Resource::Segment(msn)) => {
            let st = stream.lock();
            return match st
                .rendition(rendition)
                .and_then(|r| r.playlist.segment(msn))
            {
                Some(b) => response(StatusCode::OK, "video/iso.segment", IMMUTABLE, b),
                None => error(StatusCode::NOT_FOUND, "no such segment"),
            };
        }
        Some(Resource::Part { msn, index }) => (msn, index),
        None => return error(StatusCode::NOT_FOUND, "not found"),
    };
    let timeout = blocking_timeout(state.streams.target_duration());
    let deadline = Instant::now() + timeout;
    let mut rx = stream.watch_rendition(rendition);
    let mut blocked = None;
    loop {
        {
            let st = stream.lock();
            let lookup = st.rendition(rendition).map(|r| r.playlist.part(msn, part));
            match lookup {
                Some(PartLookup::Available(b)) => {
                    return response(StatusCode::OK, "video/iso.segment", IMMUTABLE, b);
                }
                Some(PartLookup::Pending) if !st.ended => {
                    if blocked.is_none() {
                        blocked = Some(Blocked::new(&state.metrics));
                    }
                }
                _ => return error(StatusCode::NOT_FOUND, "no such part"),
            }
        }
        if !wait_change(&mut rx, deadline).await {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the hinted part did not become available in time",
            );
        }
    }
}
