//! Which origin node a `/live/NAME/...` request is proxied to, and the
//! fetch through the cache with fallback to the next-ranked node.
//!
//! With a registry that lists nodes (a control plane, or a static node
//! list), each request is routed by the routing component
//! (`livestack:edge/routing.pick`: the stream's placement node first, then
//! its region, then the nearest healthy region by rendezvous hashing with
//! bounded load) for the stream `NAME` and the client's location
//! ([`GeoHeaders`](crate::GeoHeaders)), and fetched from the chosen node's
//! `base_url` through [`OriginCache::get_from`], whose cache key includes
//! the node: after a failover the edge never serves the previous node's
//! playlists or parts. With a registry that lists no node, every request
//! goes to the configured origin, exactly as an edge without a registry;
//! an edge with no configured origin (the registry alone names the
//! origins) answers `503` with `Retry-After` and a reason until a node
//! registers.
//!
//! When the chosen node cannot be reached (connection refused, reset,
//! connect timeout), the request is routed again with that node excluded
//! (the components see it as unhealthy for that one call) and goes to the
//! next-ranked node, up to [`MAX_ATTEMPTS`] nodes; only when none answers
//! does the viewer get `503` with `Retry-After` and an
//! `x-livestack-reason`. A node that refused a connection or did not accept
//! one in time is avoided by every request of this edge for [`HOLD_DOWN`]
//! (unless no other node is left), so a black-holed node costs one connect
//! timeout, not one per request, until its registry entry goes stale; a
//! connection lost mid-exchange moves only that request on.
//!
//! Decisions are cached per (stream, client location) until the registry
//! snapshot changes or [`route_ttl`](Upstreams::new) passes, so most
//! requests cost no component call.
//!
//! Both times (a decision's age, a node's hold-down) are read from the
//! edge's clock ([`EdgeConfig::clock`](crate::EdgeConfig::clock)), so tests
//! move them with a manual clock instead of sleeping.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, Uri, header};
use http_body_util::Full;
use livestack_control::SharedClock;
use livestack_edge::{
    ClientGeo, ComponentError, OriginNode, RegistryView, RouteReason, RoutingError,
};
use livestack_edge_cache::{CacheError, CachedResponse};
use tracing::{debug, warn};

use crate::registry::ControlRegistry;
use crate::server::{State, component, failed, reply};

/// Most origin nodes one request tries before it is answered `503`.
pub const MAX_ATTEMPTS: usize = 3;
/// How long this edge avoids a node it could not connect to.
pub const HOLD_DOWN: Duration = Duration::from_secs(5);
/// `Retry-After` of a `503` for a stream no node can serve, seconds.
const RETRY_AFTER_S: u32 = 2;
/// Bound on cached routing decisions; the cache is emptied when full.
const ROUTE_CACHE_MAX: usize = 4096;
/// Response header naming the origin node that answered (routed requests).
pub const ORIGIN_NODE_HEADER: &str = "x-livestack-origin-node";

thread_local! {
    /// Node ids the routing call running on this thread must treat as
    /// unhealthy (see [`with_excluded`]).
    static EXCLUDED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (a synchronous component call) with `excluded` reported
/// unhealthy by every [`Excluding`] view read on this thread meanwhile.
/// Component calls run on the calling thread, so this scopes the exclusion
/// to exactly that call.
fn with_excluded<R>(excluded: &[String], f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            EXCLUDED.with_borrow_mut(Vec::clear);
        }
    }
    EXCLUDED.with_borrow_mut(|ex| {
        ex.clear();
        ex.extend_from_slice(excluded);
    });
    let _reset = Reset;
    f()
}

/// The registry view the components get: the configured one, with the
/// nodes excluded for the current call (if any) marked unhealthy.
struct Excluding(Arc<dyn RegistryView>);

impl RegistryView for Excluding {
    fn nodes(&self) -> Vec<OriginNode> {
        let mut nodes = self.0.nodes();
        EXCLUDED.with_borrow(|excluded| {
            if !excluded.is_empty() {
                for node in nodes.iter_mut().filter(|n| excluded.contains(&n.id)) {
                    node.healthy = false;
                }
            }
        });
        nodes
    }

    fn placement(&self, stream: &str) -> Option<String> {
        self.0.placement(stream)
    }
}

/// A node chosen for a request.
#[derive(Debug, Clone)]
struct Chosen {
    node_id: String,
    /// The node's `base_url`; `None` if it is not a valid URI.
    base: Option<Uri>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RouteKey {
    stream: String,
    country: Option<String>,
    /// Latitude and longitude bits.
    location: Option<(u64, u64)>,
}

impl RouteKey {
    fn new(stream: &str, geo: &ClientGeo) -> Self {
        Self {
            stream: stream.to_owned(),
            country: geo.country.clone(),
            location: geo
                .location
                .map(|p| (p.lat_deg.to_bits(), p.lon_deg.to_bits())),
        }
    }
}

struct CachedRoute {
    chosen: Chosen,
    at: Instant,
    generation: u64,
}

/// The per-stream upstream choice of an edge: its registry view, the
/// routing decisions it reuses and the nodes it could not reach.
pub(crate) struct Upstreams {
    view: Arc<dyn RegistryView>,
    control: Option<Arc<ControlRegistry>>,
    route_ttl: Duration,
    routes: Mutex<HashMap<RouteKey, CachedRoute>>,
    /// Node id → until when it is avoided.
    held_down: Mutex<HashMap<String, Instant>>,
    /// What decisions are aged by and hold-downs end by.
    clock: SharedClock,
}

impl Upstreams {
    /// Upstreams over `control`'s snapshot when given, else over `view`.
    /// Routing decisions are reused for at most `route_ttl` by `clock`, and
    /// never across registry snapshots.
    pub(crate) fn new(
        view: Arc<dyn RegistryView>,
        control: Option<Arc<ControlRegistry>>,
        route_ttl: Duration,
        clock: SharedClock,
    ) -> Self {
        let view = match &control {
            Some(c) => Arc::clone(c) as Arc<dyn RegistryView>,
            None => view,
        };
        Self {
            view,
            control,
            route_ttl,
            routes: Mutex::new(HashMap::new()),
            held_down: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// The view to hand to the components.
    pub(crate) fn component_view(&self) -> Arc<dyn RegistryView> {
        Arc::new(Excluding(Arc::clone(&self.view)))
    }

    /// True when requests are routed per stream (the registry lists at
    /// least one node).
    fn routed(&self) -> bool {
        match &self.control {
            Some(c) => c.node_count() > 0,
            None => !self.view.nodes().is_empty(),
        }
    }

    fn generation(&self) -> u64 {
        self.control.as_ref().map_or(0, |c| c.generation())
    }

    fn cached(&self, key: &RouteKey) -> Option<Chosen> {
        let now = self.clock.now();
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes
            .get(key)
            .filter(|r| {
                r.generation == self.generation()
                    && now.saturating_duration_since(r.at) < self.route_ttl
            })
            .map(|r| r.chosen.clone())
    }

    fn remember(&self, key: RouteKey, chosen: &Chosen) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if routes.len() >= ROUTE_CACHE_MAX {
            routes.clear();
        }
        routes.insert(
            key,
            CachedRoute {
                chosen: chosen.clone(),
                at: self.clock.now(),
                generation: self.generation(),
            },
        );
    }

    /// Nodes currently held down.
    fn held_down(&self) -> Vec<String> {
        let now = self.clock.now();
        let mut held = self
            .held_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.retain(|_, until| *until > now);
        held.keys().cloned().collect()
    }

    fn hold_down(&self, node_id: &str) {
        self.held_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node_id.to_owned(), self.clock.now() + HOLD_DOWN);
        // Decisions made while the node looked reachable are void.
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn reached(&self, node_id: &str) {
        let mut held = self
            .held_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !held.is_empty() {
            held.remove(node_id);
        }
    }
}

/// The broadcast name of a `/live/NAME/...` path.
fn stream_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/live/")?;
    let name = rest.split('/').next().unwrap_or(rest);
    (!name.is_empty()).then_some(name)
}

/// The response for a cache failure (no origin response at all).
fn cache_failure(state: &State, e: &CacheError) -> Response<Full<Bytes>> {
    let outcome = if matches!(e, CacheError::Busy) {
        "busy"
    } else {
        "error"
    };
    state
        .metrics
        .cache
        .get_or_create(&vec![("outcome", outcome.to_owned())])
        .inc();
    let status = match e {
        CacheError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        // The in-flight caps (CacheConfig::max_in_flight*): come back soon.
        CacheError::Busy => return unavailable("too many origin fetches in flight"),
        _ => StatusCode::BAD_GATEWAY,
    };
    reply(status, &format!("origin unavailable: {e}"))
}

/// The `503` (with `Retry-After` and a reason) for a request an edge
/// without a configured origin cannot place: the registry lists no node.
pub(crate) fn no_origin() -> Response<Full<Bytes>> {
    unavailable("no origin node is registered (and no origin is configured)")
}

/// The base URL of a registered node to fetch stream-independent pages
/// (the player page, `/streams`) from when no origin is configured: the
/// first healthy node by id, else the first by id.
pub(crate) fn any_node(state: &State) -> Option<Uri> {
    let mut nodes = state.upstreams.view.nodes();
    nodes.sort_by(|a, b| (!a.healthy, &a.id).cmp(&(!b.healthy, &b.id)));
    nodes.iter().find_map(|n| n.base_url.parse().ok())
}

/// `503` with `Retry-After`.
fn unavailable(reason: &str) -> Response<Full<Bytes>> {
    let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, reason);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

fn reason_label(reason: &RouteReason) -> &'static str {
    match reason {
        RouteReason::Placement => "placement",
        RouteReason::PlacementRegion(_) => "placement_region",
        RouteReason::Rendezvous => "rendezvous",
        RouteReason::Failover(_) => "failover",
        RouteReason::Other(_) => "other",
    }
}

/// Why routing gave no node.
enum NoRoute {
    /// The component's verdict.
    Routing(RoutingError),
    /// The component failed.
    Failed(ComponentError),
}

impl NoRoute {
    /// `503` with `Retry-After` for a verdict; as any component failure
    /// otherwise.
    fn response(self) -> Response<Full<Bytes>> {
        match self {
            Self::Failed(e) => failed(e),
            Self::Routing(RoutingError::NoHealthyNode) => unavailable("no healthy origin node"),
            Self::Routing(RoutingError::NoCapacity) => {
                unavailable("every healthy origin node is at its load cap")
            }
            Self::Routing(RoutingError::Other(e)) => unavailable(&format!("routing failed: {e}")),
        }
    }
}

/// One routing component call with `excluded` reported unhealthy.
fn route(
    state: &State,
    stream: &str,
    geo: &ClientGeo,
    excluded: &[String],
) -> Result<(Chosen, RouteReason), NoRoute> {
    let result = with_excluded(excluded, || {
        component(state, "routing", || state.components.route(stream, geo))
    });
    let label = |reason: &str| vec![("reason", reason.to_owned())];
    match result {
        Ok(Ok(route)) => {
            state
                .metrics
                .routes
                .get_or_create(&label(reason_label(&route.reason)))
                .inc();
            // An unusable URL is treated below like an unreachable node.
            let base = route.node.base_url.parse().ok();
            Ok((
                Chosen {
                    node_id: route.node.id,
                    base,
                },
                route.reason,
            ))
        }
        Ok(Err(e)) => {
            let reason = match e {
                RoutingError::NoHealthyNode => "no_healthy_node",
                RoutingError::NoCapacity => "no_capacity",
                RoutingError::Other(_) => "error",
            };
            state.metrics.routes.get_or_create(&label(reason)).inc();
            Err(NoRoute::Routing(e))
        }
        Err(e) => Err(NoRoute::Failed(e)),
    }
}

/// Routes with the held-down nodes excluded as well as `tried`; if that
/// leaves no node, once more with only `tried` excluded (a held-down node
/// is better than none).
fn route_avoiding(
    state: &State,
    stream: &str,
    geo: &ClientGeo,
    tried: &[String],
) -> Result<Chosen, NoRoute> {
    let held = state.upstreams.held_down();
    let mut excluded = tried.to_vec();
    excluded.extend(held.iter().filter(|id| !tried.contains(id)).cloned());
    let first = route(state, stream, geo, &excluded);
    let result = match first {
        Err(NoRoute::Routing(_)) if excluded.len() > tried.len() => {
            route(state, stream, geo, tried)
        }
        other => other,
    };
    let (chosen, reason) = result?;
    debug!(stream, node = %chosen.node_id, ?reason, "routed");
    Ok(chosen)
}

/// Fetches `key` (a [`cache_key`](livestack_edge_cache::cache_key) of
/// `path`) for a viewer at `geo`: from the node routing picks for the
/// stream of `path` when the registry lists nodes, else from the configured
/// origin. See the module documentation. A routed response carries
/// [`ORIGIN_NODE_HEADER`].
///
/// # Errors
/// The response to send instead: `503` (no node, none reachable), `502`,
/// `504` (as for the configured origin).
pub(crate) async fn fetch(
    state: &State,
    path: &str,
    geo: &ClientGeo,
    key: &str,
) -> Result<CachedResponse, Response<Full<Bytes>>> {
    let upstreams = &state.upstreams;
    let Some(stream) = stream_name(path).filter(|_| upstreams.routed()) else {
        if state.origin.is_none() {
            return Err(no_origin());
        }
        return state
            .cache
            .get(key)
            .await
            .map_err(|e| cache_failure(state, &e));
    };
    let route_key = RouteKey::new(stream, geo);
    let mut tried: Vec<String> = Vec::new();
    while tried.len() < MAX_ATTEMPTS {
        let chosen = match upstreams.cached(&route_key).filter(|_| tried.is_empty()) {
            Some(c) => c,
            None => match route_avoiding(state, stream, geo, &tried) {
                Ok(c) => c,
                // Nodes were tried and none is left: say which.
                Err(_) if !tried.is_empty() => break,
                Err(no_route) => return Err(no_route.response()),
            },
        };
        if tried.contains(&chosen.node_id) {
            // A routing policy that ignores health: nothing else to try.
            break;
        }
        let fetched = match &chosen.base {
            Some(base) => state.cache.get_from(base, key).await.map_err(Some),
            None => Err(None),
        };
        match fetched {
            Ok(mut response) => {
                upstreams.reached(&chosen.node_id);
                if let Ok(v) = HeaderValue::from_str(&chosen.node_id) {
                    response.headers.insert(ORIGIN_NODE_HEADER, v);
                }
                upstreams.remember(route_key, &chosen);
                return Ok(response);
            }
            Err(e @ (None | Some(CacheError::Connect(_) | CacheError::Transport(_)))) => {
                warn!(
                    stream,
                    node = %chosen.node_id,
                    error = e.as_ref().map_or_else(|| "invalid base URL".to_owned(), ToString::to_string),
                    "origin node unreachable; trying the next-ranked node"
                );
                state
                    .metrics
                    .upstream_fallbacks
                    .get_or_create(&vec![("node", chosen.node_id.clone())])
                    .inc();
                // A refused or timed-out connection says the node is gone; a
                // connection lost mid-exchange may be this request's bad luck,
                // so it moves on alone.
                if !matches!(e, Some(CacheError::Transport(_))) {
                    upstreams.hold_down(&chosen.node_id);
                }
                tried.push(chosen.node_id);
            }
            Err(Some(e)) => return Err(cache_failure(state, &e)),
        }
    }
    Err(unavailable(&format!(
        "no origin node reachable for {stream} (tried {})",
        tried.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use livestack_control::ManualClock;
    use livestack_edge::{GeoPoint, StaticRegistry};

    fn node(id: &str) -> OriginNode {
        OriginNode {
            id: id.into(),
            region: "r".into(),
            location: GeoPoint {
                lat_deg: 0.0,
                lon_deg: 0.0,
            },
            healthy: true,
            load: 0.0,
            heartbeat_age_ms: 0,
            base_url: format!("http://{id}"),
            webtransport_url: None,
            certificate_sha256: Vec::new(),
        }
    }

    #[test]
    fn stream_names() {
        assert_eq!(stream_name("/live/cam1/video.m3u8"), Some("cam1"));
        assert_eq!(stream_name("/live/cam1"), Some("cam1"));
        assert_eq!(stream_name("/live//x"), None);
        assert_eq!(stream_name("/live/"), None);
        assert_eq!(stream_name("/other/cam1"), None);
    }

    fn upstreams(clock: &ManualClock) -> Upstreams {
        let view = Arc::new(StaticRegistry {
            nodes: vec![node("a"), node("b")],
            ..StaticRegistry::default()
        });
        Upstreams::new(view, None, Duration::from_secs(1), clock.shared())
    }

    #[test]
    fn a_hold_down_ends_after_hold_down_by_the_edge_clock() {
        let clock = ManualClock::new();
        let up = upstreams(&clock);
        up.hold_down("a");
        assert_eq!(up.held_down(), ["a"]);
        clock.advance(HOLD_DOWN - Duration::from_millis(1));
        assert_eq!(up.held_down(), ["a"], "still held just before the end");
        clock.advance(Duration::from_millis(1));
        assert!(up.held_down().is_empty(), "released at HOLD_DOWN");
    }

    #[test]
    fn a_routing_decision_is_reused_for_route_ttl_by_the_edge_clock() {
        let clock = ManualClock::new();
        let up = upstreams(&clock);
        let key = RouteKey::new(
            "cam",
            &ClientGeo {
                location: None,
                country: None,
            },
        );
        let chosen = Chosen {
            node_id: "b".into(),
            base: None,
        };
        up.remember(key.clone(), &chosen);
        clock.advance(Duration::from_millis(999));
        assert_eq!(up.cached(&key).map(|c| c.node_id), Some("b".into()));
        clock.advance(Duration::from_millis(1));
        assert!(up.cached(&key).is_none(), "expired at route_ttl");
        // A hold-down voids every decision at once.
        up.remember(key.clone(), &chosen);
        up.hold_down("a");
        assert!(up.cached(&key).is_none());
    }

    #[test]
    fn exclusion_applies_to_one_call_only() {
        let view = Excluding(Arc::new(StaticRegistry {
            nodes: vec![node("a"), node("b")],
            ..StaticRegistry::default()
        }));
        let healthy =
            |v: &Excluding| -> Vec<bool> { v.nodes().iter().map(|n| n.healthy).collect() };
        assert_eq!(
            with_excluded(&["b".to_owned()], || healthy(&view)),
            [true, false]
        );
        assert_eq!(healthy(&view), [true, true]);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_excluded(&["a".to_owned()], || panic!("component call panicked"))
        }));
        assert!(caught.is_err());
        assert_eq!(healthy(&view), [true, true], "reset on unwind too");
    }
}
