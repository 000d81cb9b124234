//! The edge HTTP server.

use std::{
    borrow::Cow,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use livestack_control::{ControlPlane, SharedClock, SystemClock};
use livestack_edge::{
    ClientGeo, ComponentError, ComponentLimits, Components, HostImports, Keys, RegistryView,
    RewriteOptions, SignalingRequest, TokenError,
};
use livestack_edge_cache::{CacheConfig, OriginCache, Outcome, cache_key};
use tokio::{net::TcpListener, task::JoinHandle};
use tracing::{debug, info, warn};

use crate::geo::GeoHeaders;
use crate::metrics::EdgeMetrics;
use crate::registry::{ControlRegistry, DEFAULT_REGISTRY_REFRESH, RegistryOptions};
use crate::upstream::{self, Upstreams};

/// Largest signaling request body (an SDP offer), bytes.
const MAX_SIGNALING_BODY: usize = 64 << 10;
/// Header carrying the reason of a refusal.
const REASON: &str = "x-livestack-reason";

/// Edge settings.
pub struct EdgeConfig {
    /// TCP address of the HTTP listener.
    pub http: SocketAddr,
    /// Base URL of the origin, e.g. `http://127.0.0.1:8080`: where requests
    /// go while the registry lists no node. `None`
    /// ([`registry_only`](Self::registry_only)): the registry alone names
    /// the origins, and while it lists none, `/live/` requests are answered
    /// `503` with `Retry-After`.
    pub origin: Option<http::Uri>,
    /// Directory of replacement components (`<job>.wasm`); the embedded
    /// defaults serve the jobs without a file there.
    pub modules: Option<PathBuf>,
    /// Token keys in the `livestack-tokens` key-config format
    /// (`kid:ALG:base64url`, comma-separated).
    pub token_keys: String,
    /// Absolute base of this edge as viewers see it (scheme and host for
    /// the CTA-5007 `catu` checks), e.g. `https://edge.example`. Default:
    /// `http://<bound address>`.
    pub public_url: Option<String>,
    /// Component sandbox limits.
    pub limits: ComponentLimits,
    /// Limits of the HTTP listener: header-read timeout, connection caps in
    /// total and per client address, HTTP/2 streams
    /// ([`livestack_listener`] has the defaults).
    pub listener: livestack_listener::ListenerLimits,
    /// The origin registry view handed to the routing and signaling
    /// components when there is no [`control`](Self::control) plane (a
    /// static node list; empty: every request goes to
    /// [`origin`](Self::origin), if any).
    pub registry: Arc<dyn RegistryView>,
    /// The control plane to read the origin registry and stream placement
    /// from ([`ControlRegistry`]); it replaces [`registry`](Self::registry).
    /// While it lists nodes, each `/live/NAME/...` request is proxied to the
    /// node routing picks for `NAME` (placement first); while it lists
    /// none, to [`origin`](Self::origin) if there is one, else they are
    /// answered `503`. `None`: no control plane.
    pub control: Option<Arc<dyn ControlPlane>>,
    /// How often the registry snapshot is refreshed from
    /// [`control`](Self::control) (at least 10 ms); also how long a routing
    /// decision is reused. Default [`DEFAULT_REGISTRY_REFRESH`] (500 ms).
    pub registry_refresh: Duration,
    /// Request headers carrying the client's location for routing
    /// ([`GeoHeaders`], CDN-style defaults).
    pub geo_headers: GeoHeaders,
    /// The clock every time-based decision of the edge reads: token
    /// expiry and signaling session times, cache freshness, registry
    /// heartbeat ages, routing-decision reuse and node hold-downs. Default
    /// the system clock; tests pass a
    /// [`ManualClock`](livestack_control::ManualClock).
    pub clock: SharedClock,
    /// The secret this edge presents to its origins in
    /// [`EDGE_CREDENTIAL_HEADER`](livestack_tokens::EDGE_CREDENTIAL_HEADER)
    /// on every request (the origins' edge credential, see their
    /// `[access]`): a closed origin serves only requests carrying it.
    /// `None`: none sent.
    pub origin_credential: Option<String>,
    /// Configuration the components read with `config.get` (the `config`
    /// import of WIT `livestack:edge`): `routing.load-cap` (fraction,
    /// default 0.85), `routing.max-heartbeat-age-ms` (default 10,000),
    /// `routing.nearest-region-first` (`true` when the origins relay
    /// streams to each other: viewers stay in their nearest region; default
    /// `false`), `signaling.session-*`. Empty by default.
    pub module_config: std::collections::HashMap<String, String>,
}

impl EdgeConfig {
    /// The settings for an edge listening on `http` in front of `origin`,
    /// with `token_keys`; everything else at its default: embedded
    /// components, default limits, no registry, no control plane.
    pub fn new(http: SocketAddr, origin: http::Uri, token_keys: impl Into<String>) -> Self {
        Self {
            origin: Some(origin),
            ..Self::registry_only(http, token_keys)
        }
    }

    /// The settings for an edge listening on `http` with no configured
    /// origin: set [`control`](Self::control) (or a static
    /// [`registry`](Self::registry)) to name the origin nodes, or
    /// [`Edge::start`] refuses with [`EdgeError::NoOrigin`]. Everything else
    /// as for [`new`](Self::new).
    pub fn registry_only(http: SocketAddr, token_keys: impl Into<String>) -> Self {
        Self {
            http,
            origin: None,
            modules: None,
            token_keys: token_keys.into(),
            public_url: None,
            listener: livestack_listener::ListenerLimits::default(),
            limits: ComponentLimits::default(),
            registry: Arc::new(livestack_edge::StaticRegistry::default()),
            control: None,
            registry_refresh: DEFAULT_REGISTRY_REFRESH,
            geo_headers: GeoHeaders::default(),
            clock: SystemClock::shared(),
            origin_credential: None,
            module_config: std::collections::HashMap::new(),
        }
    }
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("http", &self.http)
            .field("origin", &self.origin)
            .field("modules", &self.modules)
            .field("control", &self.control.as_ref().map(|c| c.backend()))
            .field("registry_refresh", &self.registry_refresh)
            .finish_non_exhaustive()
    }
}

/// Errors starting the edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// The listener could not bind.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// The token key configuration is invalid.
    #[error("invalid token keys: {0}")]
    Keys(#[from] livestack_tokens::TokenError),
    /// The components could not be loaded.
    #[error(transparent)]
    Components(#[from] ComponentError),
    /// Neither an origin nor a registry (control plane or static node
    /// list) says where requests go.
    #[error("no origin: configure an origin URL or a control plane with the origin registry")]
    NoOrigin,
    /// [`EdgeConfig::origin_credential`] is shorter than
    /// [`MIN_EDGE_CREDENTIAL_LEN`](livestack_tokens::MIN_EDGE_CREDENTIAL_LEN)
    /// bytes or not a valid header value (the origins refuse such a
    /// credential too). The value is not part of the message.
    #[error(
        "the origin credential must be at least {} visible ASCII characters",
        livestack_tokens::MIN_EDGE_CREDENTIAL_LEN
    )]
    OriginCredential,
    /// A `routing.*` value of [`EdgeConfig::module_config`] does not parse.
    #[error("invalid module configuration: {0}")]
    ModuleConfig(String),
}

/// The cache's base URI when no origin is configured: every fetch then names
/// its upstream node ([`OriginCache::get_from`]), so this base is never
/// fetched. `.invalid` (RFC 6761 §6.4) never resolves, should it be.
const NO_ORIGIN: &str = "http://no-origin.invalid/";

pub(crate) struct State {
    pub(crate) components: Arc<Components>,
    pub(crate) cache: Arc<OriginCache>,
    /// The configured origin ([`EdgeConfig::origin`]); `None`: only the
    /// registry's nodes are upstreams.
    pub(crate) origin: Option<http::Uri>,
    pub(crate) metrics: Arc<EdgeMetrics>,
    public_url: String,
    /// Where `/live/` requests go (per stream with a registry).
    pub(crate) upstreams: Upstreams,
    geo: GeoHeaders,
    clock: SharedClock,
    admission: Arc<livestack_listener::Admission>,
    /// `/live/` requests waiting on the cache or an origin, per client
    /// address, capped at
    /// [`max_held_requests_per_address`](livestack_listener::ListenerLimits::max_held_requests_per_address).
    held: Arc<livestack_listener::HeldRequests>,
}

/// A running edge. Dropping it stops the listener.
pub struct Edge {
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// The metrics (also at `/metrics`).
    pub metrics: Arc<EdgeMetrics>,
    /// The components (for module reloads).
    pub components: Arc<Components>,
    /// The cache in front of the origin (and the registry's nodes).
    pub cache: Arc<OriginCache>,
    /// The registry snapshot read from [`EdgeConfig::control`], if any.
    pub registry: Option<Arc<ControlRegistry>>,
    held: Arc<livestack_listener::HeldRequests>,
    task: JoinHandle<()>,
    refresh_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(t) = &self.refresh_task {
            t.abort();
        }
    }
}

impl Edge {
    /// Loads the components, binds the listener and starts serving.
    ///
    /// # Errors
    /// [`EdgeError`].
    pub async fn start(config: EdgeConfig) -> Result<Self, EdgeError> {
        if config.origin.is_none() && config.control.is_none() && config.registry.nodes().is_empty()
        {
            return Err(EdgeError::NoOrigin);
        }
        let keys = Keys::parse(&config.token_keys)?;
        // The components parse these per request: a typo is refused here,
        // not answered with 502s.
        livestack_routing::Policy::from_config(|k| config.module_config.get(k).cloned())
            .map_err(EdgeError::ModuleConfig)?;
        let origin_headers = origin_headers(&config)?;
        let metrics = Arc::new(EdgeMetrics::new());
        let refresh = config.registry_refresh.max(Duration::from_millis(10));
        let registry = config.control.clone().map(|control| {
            ControlRegistry::with_clock(
                control,
                RegistryOptions {
                    refresh,
                    ..RegistryOptions::default()
                },
                config.clock.clone(),
            )
        });
        let upstreams = Upstreams::new(
            config.registry.clone(),
            registry.clone(),
            refresh,
            config.clock.clone(),
        );
        let imports = HostImports {
            keys,
            registry: upstreams.component_view(),
            config: config.module_config.clone(),
        };
        let components = Arc::new(Components::load(
            config.modules.as_deref(),
            config.limits.clone(),
            imports,
        )?);
        let cache = origin_cache(&config, origin_headers);
        let (listener, http_addr) = bind(config.http).await?;
        let refresh_task = match &registry {
            Some(registry) => Some(start_refresh(registry, &metrics).await),
            None => None,
        };
        let state = Arc::new(State {
            components: components.clone(),
            cache: cache.clone(),
            origin: config.origin.clone(),
            metrics: metrics.clone(),
            public_url: config
                .public_url
                .unwrap_or_else(|| format!("http://{http_addr}")),
            upstreams,
            geo: config.geo_headers,
            clock: config.clock,
            admission: livestack_listener::Admission::new(
                config.listener,
                metrics.connections_refused.clone(),
            ),
            held: livestack_listener::HeldRequests::new(
                config.listener.max_held_requests_per_address,
                metrics.held_requests_refused.clone(),
            ),
        });
        info!(
            %http_addr,
            origin = config.origin.as_ref().map(ToString::to_string),
            control = config.control.as_ref().map(|c| c.backend()),
            "edge listening"
        );
        let held = state.held.clone();
        let task = tokio::spawn(serve(listener, state));
        Ok(Self {
            http_addr,
            metrics,
            components,
            cache,
            registry,
            held,
            task,
            refresh_task,
        })
    }

    /// `/live/` requests of client address `peer` waiting on the cache or
    /// an origin now (at most `max_held_requests_per_address`).
    pub fn held_requests(&self, peer: IpAddr) -> usize {
        self.held.held_by(peer)
    }

    /// Runs until the listener task ends.
    pub async fn run(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// The cache in front of the configured origin (a placeholder that is never
/// fetched from when there is none: routed requests name their node), on
/// the edge's clock.
fn origin_cache(config: &EdgeConfig, origin_headers: http::HeaderMap) -> Arc<OriginCache> {
    let origin = config
        .origin
        .clone()
        .unwrap_or_else(|| http::Uri::from_static(NO_ORIGIN));
    OriginCache::new(CacheConfig {
        clock: config.clock.clone(),
        origin_headers,
        ..CacheConfig::new(origin)
    })
}

/// What the edge sends its origins with every request: the origin
/// credential, if configured (sensitive: never logged by hyper).
///
/// # Errors
/// [`EdgeError::OriginCredential`] for a credential the origins would
/// refuse: too short, or not a header value.
fn origin_headers(config: &EdgeConfig) -> Result<http::HeaderMap, EdgeError> {
    let mut headers = http::HeaderMap::new();
    if let Some(credential) = config.origin_credential.as_deref() {
        if credential.len() < livestack_tokens::MIN_EDGE_CREDENTIAL_LEN {
            return Err(EdgeError::OriginCredential);
        }
        let mut value =
            http::HeaderValue::from_str(credential).map_err(|_| EdgeError::OriginCredential)?;
        value.set_sensitive(true);
        headers.insert(livestack_tokens::EDGE_CREDENTIAL_HEADER, value);
    }
    Ok(headers)
}

/// Binds the HTTP listener; returns it with its bound address.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), EdgeError> {
    let bind_error = |source| EdgeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Reads the first registry snapshot before the first request, then keeps
/// it fresh in a task. A failed first read is logged (once) and counted by
/// the refresh task, which retries at once.
async fn start_refresh(
    registry: &Arc<ControlRegistry>,
    metrics: &Arc<EdgeMetrics>,
) -> JoinHandle<()> {
    let _ = registry.refresh(metrics).await;
    registry.spawn_refresh(metrics.clone())
}

async fn serve(listener: TcpListener, state: Arc<State>) {
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
        tokio::spawn(async move {
            let _admitted = admitted;
            let builder = state.admission.limits().builder();
            let io = TokioIo::new(state.admission.limits().guard(tcp));
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, peer.ip(), &state).await) }
            });
            if let Err(e) = builder.serve_connection(io, svc).await {
                debug!(error = %e, peer = %livestack_listener::ClientAddr::from(peer), "connection ended with error");
            }
        });
    }
}

pub(crate) fn reply(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{reason}\n"))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(REASON),
    );
    // Reasons are our own fixed strings and component error names.
    if let Ok(v) = HeaderValue::from_str(&reason.replace(['\r', '\n'], " ")) {
        h.insert(REASON, v);
    }
    r
}

/// The edge clock's wall-clock time in Unix seconds (token and session
/// times are whole seconds).
fn now_unix(state: &State) -> u64 {
    state.clock.unix_millis() / 1000
}

async fn handle(req: Request<Incoming>, peer: IpAddr, state: &State) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let resp = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => reply(StatusCode::OK, "ok"),
        (Method::GET, "/metrics") => {
            state
                .metrics
                .sync_origin_requests(state.cache.stats().origin_requests);
            let mut r = Response::new(Full::new(Bytes::from(state.metrics.encode())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0"),
            );
            r
        }
        (_, p)
            if p.starts_with("/whip/")
                || p.starts_with("/whep/")
                || p.starts_with("/wt/")
                || p.starts_with("/rooms/") =>
        {
            // The query (it may carry a token) stays out of the span.
            let span =
                tracing::info_span!("signaling", http.request.method = %req.method(), url.path = p);
            tracing::Instrument::instrument(signaling(req, state), span).await
        }
        (Method::GET | Method::HEAD, p) if p.starts_with("/live/") => {
            let query = req.uri().query().map(str::to_owned);
            let cat_header = req
                .headers()
                .get(livestack_tokens::TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let geo = state.geo.client_geo(req.headers());
            let viewer = Viewer {
                peer,
                cat_header: cat_header.as_deref(),
                geo,
            };
            live(&path, query.as_deref(), viewer, state).await
        }
        (Method::GET | Method::HEAD, "/" | "/player.html" | "/hls.min.js" | "/streams") => {
            // The player page and its script are public.
            passthrough(&path, state).await
        }
        (Method::OPTIONS, _) => {
            let mut r = reply(StatusCode::NO_CONTENT, "");
            *r.body_mut() = Full::new(Bytes::new());
            r.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            r.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("*"),
            );
            r
        }
        _ => reply(StatusCode::NOT_FOUND, "not found"),
    };
    state
        .metrics
        .http_responses
        .get_or_create(&vec![("status", resp.status().as_u16().to_string())])
        .inc();
    resp
}

/// Records a component call (time, outcome) and logs a failure.
pub(crate) fn component<T>(
    state: &State,
    name: &'static str,
    f: impl FnOnce() -> Result<T, ComponentError>,
) -> Result<T, ComponentError> {
    let start = Instant::now();
    let result = f();
    state
        .metrics
        .component_seconds
        .get_or_create(&vec![("component", name.to_owned())])
        .observe(start.elapsed().as_secs_f64());
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ComponentError::DeadlineExceeded { .. }) => "deadline",
        Err(ComponentError::ResourceLimit { .. }) => "resource_limit",
        Err(ComponentError::Trap { .. }) => "trap",
        Err(_) => "error",
    };
    state
        .metrics
        .component_calls
        .get_or_create(&vec![
            ("component", name.to_owned()),
            ("outcome", outcome.to_owned()),
        ])
        .inc();
    if let Err(e) = &result {
        warn!(component = name, error = %e, "component failed");
    }
    result
}

/// The response for a failed component call: 503 when overloaded, else
/// 502; the PoP itself keeps serving.
pub(crate) fn failed(e: ComponentError) -> Response<Full<Bytes>> {
    let status = match e {
        ComponentError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    reply(status, &format!("edge component failed: {e}"))
}

/// The realm of the `WWW-Authenticate: Bearer` challenges (RFC 6750 §3),
/// the one signaling and the gateway component name.
const REALM: &str = "livestack";

/// A token refusal, answered as the gateway component answers it: the
/// status and reason code of [`livestack_tokens::TokenErrorKind`] (one
/// table for both), and the RFC 6750 challenge.
fn token_refused(e: &TokenError) -> Response<Full<Bytes>> {
    let kind = e.kind();
    let text = format!("token refused: {e:?}");
    let mut r = reply(
        StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::UNAUTHORIZED),
        &text,
    );
    r.headers_mut()
        .insert(REASON, HeaderValue::from_static(kind.reason()));
    if let Some(challenge) = kind.bearer_error().challenge(REALM, &text)
        && let Ok(v) = HeaderValue::from_str(&challenge)
    {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// No token at all: 401 with a bare `Bearer` challenge (RFC 6750 §3.1: no
/// error code when the request has no credentials), as the gateway.
fn token_missing() -> Response<Full<Bytes>> {
    let mut r = reply(
        StatusCode::UNAUTHORIZED,
        "a token is required (query parameter `token` or CTA-Common-Access-Token header)",
    );
    let h = r.headers_mut();
    h.insert(REASON, HeaderValue::from_static("missing-token"));
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"livestack\""),
    );
    r
}

/// Who asks for a `/live/` resource.
struct Viewer<'a> {
    /// The client's address (held requests are counted per address).
    peer: IpAddr,
    /// The `CTA-Common-Access-Token` header, if sent.
    cat_header: Option<&'a str>,
    /// Where the client is.
    geo: ClientGeo,
}

async fn live(
    path: &str,
    query: Option<&str>,
    viewer: Viewer<'_>,
    state: &State,
) -> Response<Full<Bytes>> {
    let token = match verify_viewer(path, query, viewer.cat_header, state) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    // The origin's reading of the delivery directives: what it would
    // refuse with 400, the edge refuses the same way without asking it.
    let key = match cache_key(path, query, &[livestack_tokens::TOKEN_PARAM]) {
        Ok(key) => key,
        Err(e) => return reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // A blocking reload or a preload-hinted part waits here until the
    // origin has it: one address may hold only so many (the origin's rule,
    // at the edge's own listener, where viewers' addresses are known).
    let Some(_held) = state.held.hold(viewer.peer) else {
        let mut r = reply(
            StatusCode::TOO_MANY_REQUESTS,
            "this address holds as many waiting requests as it may",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let cached = match upstream::fetch(state, path, &viewer.geo, &key).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let outcome = match cached.outcome {
        Outcome::Hit => "hit",
        Outcome::Miss => "miss",
        Outcome::Coalesced => "coalesced",
        _ => "other",
    };
    state
        .metrics
        .cache
        .get_or_create(&vec![("outcome", outcome.to_owned())])
        .inc();

    let rewritten = cached.status == StatusCode::OK && path.ends_with(".m3u8");
    let body = if rewritten {
        match tokenize_playlist(&cached.body, &token, state) {
            Ok(body) => body,
            Err(response) => return *response,
        }
    } else {
        cached.body.clone()
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = cached.status;
    for (name, value) in &cached.headers {
        if name != header::CONTENT_LENGTH {
            r.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if rewritten {
        // The body carries this viewer's token in every URI: no shared
        // cache (CDN, proxy) may keep it for another viewer (RFC 9111
        // §5.2.2.7 `private`), and a token sent in the header changes the
        // body (`Vary`, RFC 9110 §12.5.5). The edge's own cache holds the
        // origin's token-free playlist, not this.
        let cache = private_cache_control(cached.headers.get(header::CACHE_CONTROL));
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, cache);
        h.insert(
            header::VARY,
            HeaderValue::from_static(livestack_tokens::TOKEN_HEADER),
        );
    }
    r
}

/// Verifies the viewer's token for `path` through the tokens component;
/// returns the token to write into the playlist's URIs (the renewed one
/// when CAT renewal, `catr`, issued one).
///
/// # Errors
/// The response to send instead: `401`/`403` with the reason, or the
/// component failure's.
fn verify_viewer(
    path: &str,
    query: Option<&str>,
    cat_header: Option<&str>,
    state: &State,
) -> Result<String, Box<Response<Full<Bytes>>>> {
    // The extractor the gateway component uses too: a percent-encoded token
    // passes here exactly as there.
    let Some(token) = livestack_tokens::request_token(query, cat_header).map(Cow::into_owned)
    else {
        return Err(Box::new(token_missing()));
    };
    let url = format!("{}{}", state.public_url, path);
    let verified = match component(state, "tokens", || {
        state.components.verify_token(&token, &url, now_unix(state))
    }) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            debug!(reason = ?e, "token refused");
            return Err(Box::new(token_refused(&e)));
        }
        Err(e) => return Err(Box::new(failed(e))),
    };
    Ok(verified.renewal.map(|r| r.token).unwrap_or(token))
}

/// The origin's playlist with `token` on every URI, through the manifest
/// component.
///
/// # Errors
/// `502` for a playlist that is not UTF-8 or that the rewriter refuses, or
/// the component failure's response.
fn tokenize_playlist(
    playlist: &Bytes,
    token: &str,
    state: &State,
) -> Result<Bytes, Box<Response<Full<Bytes>>>> {
    let Ok(text) = std::str::from_utf8(playlist) else {
        return Err(Box::new(reply(
            StatusCode::BAD_GATEWAY,
            "origin playlist is not UTF-8",
        )));
    };
    let opts = RewriteOptions {
        token_query: Some(livestack_tokens::token_query(token)),
        token_foreign_uris: false,
        base: None,
        max_bandwidth: None,
        max_height: None,
        allowed_codecs: Vec::new(),
        max_input_bytes: None,
    };
    match component(state, "manifest", || {
        state.components.rewrite_manifest(text, &opts)
    }) {
        Ok(Ok(rewritten)) => Ok(Bytes::from(rewritten)),
        Ok(Err(e)) => {
            warn!(error = ?e, "origin playlist refused by the rewriter");
            Err(Box::new(reply(
                StatusCode::BAD_GATEWAY,
                &format!("origin playlist unusable: {e:?}"),
            )))
        }
        Err(e) => Err(Box::new(failed(e))),
    }
}

/// `private` with the origin's `max-age` (if any) for a response that
/// carries a viewer's token: e.g. `public, max-age=30` becomes
/// `private, max-age=30`; no origin value becomes `private, no-cache`.
fn private_cache_control(origin: Option<&HeaderValue>) -> HeaderValue {
    let max_age = origin.and_then(|v| v.to_str().ok()).and_then(|v| {
        v.split(',')
            .map(str::trim)
            .find_map(|d| d.strip_prefix("max-age="))
            .and_then(|n| n.parse::<u32>().ok())
    });
    match max_age {
        Some(n) => HeaderValue::from_str(&format!("private, max-age={n}"))
            .unwrap_or_else(|_| HeaderValue::from_static("private, no-cache")),
        None => HeaderValue::from_static("private, no-cache"),
    }
}

async fn passthrough(path: &str, state: &State) -> Response<Full<Bytes>> {
    let fetched = match &state.origin {
        Some(_) => state.cache.get(path).await,
        None => match upstream::any_node(state) {
            Some(base) => state.cache.get_from(&base, path).await,
            None => return upstream::no_origin(),
        },
    };
    match fetched {
        Ok(c) => {
            let mut r = Response::new(Full::new(c.body));
            *r.status_mut() = c.status;
            for (name, value) in &c.headers {
                r.headers_mut().insert(name.clone(), value.clone());
            }
            r
        }
        Err(e) => reply(StatusCode::BAD_GATEWAY, &format!("origin unavailable: {e}")),
    }
}

async fn signaling(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        // Origin-form requests always have a path; none means "/" here.
        .unwrap_or_default();
    let client = state.geo.client_geo(req.headers());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match Limited::new(req.into_body(), MAX_SIGNALING_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let request = SignalingRequest {
        method,
        path,
        headers,
        body,
        client,
        now_unix_s: now_unix(state),
    };
    let out = match component(state, "signaling", || state.components.signal(request)) {
        Ok(o) => o,
        Err(e) => return failed(e),
    };
    let mut r = Response::new(Full::new(Bytes::from(out.body)));
    *r.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in out.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_refusals_answer_from_the_shared_table() {
        for (e, status, reason, code) in [
            (TokenError::Replayed, 401, "replayed", Some("invalid_token")),
            (TokenError::Expired, 401, "expired", Some("invalid_token")),
            (
                TokenError::BadSignature,
                401,
                "bad-signature",
                Some("invalid_token"),
            ),
            (
                TokenError::WrongResource(livestack_edge::ResourceMismatch::Unscoped),
                403,
                "wrong-resource",
                Some("insufficient_scope"),
            ),
            (
                TokenError::InvalidUrl("dots".into()),
                400,
                "invalid-url",
                Some("invalid_request"),
            ),
            (TokenError::KeyError("k".into()), 500, "key-error", None),
        ] {
            let r = token_refused(&e);
            assert_eq!(r.status().as_u16(), status, "{e:?}");
            assert_eq!(r.headers()[REASON], reason, "{e:?}");
            let challenge = r.headers().get(header::WWW_AUTHENTICATE);
            match code {
                Some(code) => assert!(
                    challenge
                        .and_then(|c| c.to_str().ok())
                        .is_some_and(|c| c.contains(&format!("error=\"{code}\""))),
                    "{e:?}: {challenge:?}"
                ),
                None => assert!(challenge.is_none(), "{e:?}"),
            }
        }
        let r = token_missing();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[REASON], "missing-token");
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"livestack\""
        );
    }
}
