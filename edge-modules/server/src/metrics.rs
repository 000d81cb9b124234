//! Prometheus metrics of the edge (text format at `/metrics`).

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Label set: `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// Every metric the edge exports.
#[derive(Debug)]
pub struct EdgeMetrics {
    registry: Registry,
    /// Component calls by `component` and `outcome` (`ok`, `refused`,
    /// `trap`, `deadline`, `resource_limit`, `error`).
    pub component_calls: Family<Labels, Counter>,
    /// Time spent in a component call (instantiation included), seconds,
    /// by `component`.
    pub component_seconds: Family<Labels, Histogram>,
    /// Responses by `status`.
    pub http_responses: Family<Labels, Counter>,
    /// Cache outcomes by `outcome` (`hit`, `miss`, `coalesced`, `error`).
    pub cache: Family<Labels, Counter>,
    /// Origin requests made by the cache so far, exposed as
    /// `livestack_edge_origin_requests_total`: a count only grows, so it is
    /// a counter (a gauge would make `rate()` meaningless). Updated from the
    /// cache's own count by [`sync_origin_requests`](Self::sync_origin_requests).
    pub origin_requests: Counter,
    /// Registry refreshes from the control plane by `result` (`ok`,
    /// `error`: the control plane failed or is unreachable, `timeout`).
    pub registry_refresh: Family<Labels, Counter>,
    /// Seconds since the registry snapshot in use was read from the control
    /// plane (updated at each refresh attempt; grows during an outage).
    pub registry_snapshot_age_seconds: Gauge<f64, AtomicU64>,
    /// Origin nodes in the registry snapshot.
    pub registry_nodes: Gauge,
    /// Stream placements in the registry snapshot.
    pub registry_placements: Gauge,
    /// Routing component decisions for `/live/` requests by `reason`
    /// (`placement`, `placement_region`, `rendezvous`, `failover`, `other`,
    /// `no_healthy_node`, `no_capacity`, `error`). A decision reused from
    /// the edge's short route cache is not counted again.
    pub routes: Family<Labels, Counter>,
    /// Requests moved to the next-ranked origin node because the chosen one
    /// could not be reached, by the unreachable node's `node` id.
    pub upstream_fallbacks: Family<Labels, Counter>,
    /// HTTP connections closed at accept because a connection cap was
    /// reached, by `reason` (`listener`, `address`).
    pub connections_refused: Family<livestack_listener::RefusalLabels, Counter>,
    /// `/live/` requests refused with 429 because their client address
    /// held `max_held_requests_per_address` waiting requests already.
    pub held_requests_refused: Counter,
}

fn component_histogram() -> Histogram {
    Histogram::new([
        0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.01, 0.05,
    ])
}

impl Default for EdgeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EdgeMetrics {
    /// Creates and registers the metrics under the `livestack_edge_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("livestack_edge");
        let m = Self {
            registry: Registry::default(),
            component_calls: Family::default(),
            component_seconds: Family::new_with_constructor(component_histogram),
            http_responses: Family::default(),
            cache: Family::default(),
            origin_requests: Counter::default(),
            registry_refresh: Family::default(),
            registry_snapshot_age_seconds: Gauge::default(),
            registry_nodes: Gauge::default(),
            registry_placements: Gauge::default(),
            routes: Family::default(),
            upstream_fallbacks: Family::default(),
            connections_refused: Family::default(),
            held_requests_refused: Counter::default(),
        };
        registry.register(
            "held_requests_refused",
            "Requests refused with 429: their address held the maximum of waiting requests",
            m.held_requests_refused.clone(),
        );
        registry.register(
            "connections_refused",
            "HTTP connections closed at accept because a connection cap was reached, by cap",
            m.connections_refused.clone(),
        );
        registry.register(
            "component_calls",
            "Component calls by component and outcome",
            m.component_calls.clone(),
        );
        registry.register(
            "component_seconds",
            "Time in a component call, instantiation included",
            m.component_seconds.clone(),
        );
        registry.register(
            "http_responses",
            "Responses by status",
            m.http_responses.clone(),
        );
        registry.register("cache", "Cache outcomes", m.cache.clone());
        registry.register(
            "origin_requests",
            "Requests the cache made to the origin",
            m.origin_requests.clone(),
        );
        registry.register(
            "registry_refresh",
            "Registry refreshes from the control plane by result",
            m.registry_refresh.clone(),
        );
        registry.register(
            "registry_snapshot_age_seconds",
            "Seconds since the registry snapshot in use was read",
            m.registry_snapshot_age_seconds.clone(),
        );
        registry.register(
            "registry_nodes",
            "Origin nodes in the registry snapshot",
            m.registry_nodes.clone(),
        );
        registry.register(
            "registry_placements",
            "Stream placements in the registry snapshot",
            m.registry_placements.clone(),
        );
        registry.register(
            "routes",
            "Routing decisions for live requests by reason",
            m.routes.clone(),
        );
        registry.register(
            "upstream_fallbacks",
            "Requests moved on from an unreachable origin node",
            m.upstream_fallbacks.clone(),
        );
        Self { registry, ..m }
    }

    /// Brings [`origin_requests`](Self::origin_requests) up to `count`, the
    /// cache's count of origin requests since it was created. The counter
    /// only moves forward: concurrent scrapes that read the cache's count at
    /// different moments never make it go back.
    pub fn sync_origin_requests(&self, count: u64) {
        self.origin_requests
            .inner()
            .fetch_max(count, std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_requests_is_a_counter_that_never_goes_back() {
        let m = EdgeMetrics::new();
        m.sync_origin_requests(5);
        // A scrape that read the cache's count earlier must not undo a later one.
        m.sync_origin_requests(3);
        let text = m.encode();
        assert!(
            text.contains("# TYPE livestack_edge_origin_requests counter"),
            "{text}"
        );
        assert!(
            text.contains("\nlivestack_edge_origin_requests_total 5\n"),
            "{text}"
        );
    }
}
