//! The origin registry as the edge sees it: a snapshot of the control
//! plane's nodes and stream placements, refreshed in the background.
//!
//! Components read the registry on the request path
//! ([`RegistryView`], `livestack:edge/registry`), so reads must never wait
//! on the network: they clone the current snapshot (an `Arc` behind a
//! read lock). A background task ([`ControlRegistry::spawn_refresh`])
//! replaces it every [`RegistryOptions::refresh`] with what
//! [`ControlPlane::nodes`] and [`ControlPlane::placements`] return (a
//! short-TTL cache: at most one refresh interval old while the control plane
//! answers). When the control plane is unreachable the last snapshot stays
//! in service and the edge keeps routing with it (`DESIGN.md`, "Control
//! plane": nodes keep serving when Redis is briefly unreachable); the outage
//! is logged once when it starts and once when it ends, and every failed
//! refresh is counted (`livestack_edge_registry_refresh_total{result}`).
//!
//! Heartbeat ages and the snapshot's age are read from the registry's
//! [`Clock`] ([`ControlRegistry::with_clock`]; the system clock by
//! default). A replaced snapshot is announced on
//! [`ControlRegistry::subscribe`], so that a caller waits for a refresh
//! rather than for a number of refresh periods.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use livestack_control::{
    ControlError, ControlPlane, NodeInfo, Placement, SharedClock, SystemClock,
};
use livestack_edge::{GeoPoint, OriginNode, RegistryView};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::metrics::EdgeMetrics;

/// Default of [`RegistryOptions::refresh`].
pub const DEFAULT_REGISTRY_REFRESH: Duration = Duration::from_millis(500);
/// Default of [`RegistryOptions::max_heartbeat_age`]: the routing
/// component's own default (`livestack_routing::DEFAULT_MAX_HEARTBEAT_AGE`).
pub const DEFAULT_MAX_HEARTBEAT_AGE: Duration = Duration::from_secs(10);

/// How the edge reads the registry from the control plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistryOptions {
    /// Time between two refreshes of the snapshot (the snapshot is at most
    /// this old, plus one round trip, while the control plane answers).
    /// Default [`DEFAULT_REGISTRY_REFRESH`] (500 ms).
    pub refresh: Duration,
    /// Longest one refresh (nodes and placements) may take before it counts
    /// as failed (`result="timeout"`) and the old snapshot stays. Default
    /// 2 s.
    pub timeout: Duration,
    /// A node whose heartbeat is older than this (at refresh time) is
    /// reported unhealthy. Default [`DEFAULT_MAX_HEARTBEAT_AGE`] (10 s).
    pub max_heartbeat_age: Duration,
    /// Location reported for a node whose record has none and whose region
    /// has no other node with one. Routing measures region distance from
    /// it, so such a region is near clients near this point. Default
    /// 0° N 0° E: set it to the location of the regions that do not
    /// advertise one.
    pub default_location: GeoPoint,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            refresh: DEFAULT_REGISTRY_REFRESH,
            timeout: Duration::from_secs(2),
            max_heartbeat_age: DEFAULT_MAX_HEARTBEAT_AGE,
            default_location: GeoPoint {
                lat_deg: 0.0,
                lon_deg: 0.0,
            },
        }
    }
}

/// One registry read, converted for the components.
#[derive(Debug, Default)]
struct Snapshot {
    nodes: Vec<OriginNode>,
    /// Stream name (`NAME` of `live/NAME`) → node id.
    placements: HashMap<String, String>,
    /// When it was read; `None` before the first successful refresh.
    read_at: Option<Instant>,
    /// Successful refreshes before this one (0 for the empty snapshot).
    generation: u64,
}

/// A [`RegistryView`] fed by a [`ControlPlane`]: the last snapshot of its
/// nodes and placements (see the module documentation).
///
/// Conversion of each [`NodeInfo`] into the components' [`OriginNode`]:
///
/// - `base_url` is `urls["http"]` without a trailing `/`; a node without
///   an `http` URL is left out (nothing could be proxied or redirected to
///   it);
/// - `webtransport_url` is `urls["webtransport"]`;
/// - `healthy` is *not draining and heartbeat fresh*: `heartbeat_at` no
///   older than [`RegistryOptions::max_heartbeat_age`] when the snapshot
///   was read;
/// - `heartbeat_age_ms` is the snapshot's read time minus `heartbeat_at`
///   (0 for a clock ahead of ours). It is measured when the snapshot is
///   read, not when a component looks at it: during a control-plane outage
///   the ages stay as they were at the last successful read, so routing
///   keeps the last known-good view instead of declaring every node dead
///   because the registry, not the nodes, went away (an unreachable node
///   is then found by the request that fails to reach it, which moves on
///   to the next-ranked node);
/// - `location` is the record's, else that of another node of its region,
///   else [`RegistryOptions::default_location`];
/// - `load` is `load.load`; `certificate_sha256` is the record's hashes
///   (hex) as bytes, a malformed one left out.
///
/// [`placement`](RegistryView::placement) accepts the stream name as the
/// control plane keys it (`cam1`) or as a path (`live/cam1`).
pub struct ControlRegistry {
    control: Arc<dyn ControlPlane>,
    options: RegistryOptions,
    clock: SharedClock,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The generation of the current snapshot, sent when it is replaced.
    refreshed: watch::Sender<u64>,
}

impl std::fmt::Debug for ControlRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.current();
        f.debug_struct("ControlRegistry")
            .field("backend", &self.control.backend())
            .field("options", &self.options)
            .field("nodes", &snapshot.nodes.len())
            .field("placements", &snapshot.placements.len())
            .field("generation", &snapshot.generation)
            .finish()
    }
}

/// Why a registry refresh failed (the previous snapshot stays in use).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The control plane answered with an error or could not be reached.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// No answer within [`RegistryOptions::timeout`].
    #[error("the control plane did not answer within {0:?}")]
    Timeout(Duration),
}

impl ControlRegistry {
    /// An empty registry view over `control` on the system clock; nothing
    /// is read until [`refresh`](Self::refresh) or
    /// [`spawn_refresh`](Self::spawn_refresh).
    pub fn new(control: Arc<dyn ControlPlane>, options: RegistryOptions) -> Arc<Self> {
        Self::with_clock(control, options, SystemClock::shared())
    }

    /// As [`new`](Self::new), judging heartbeat and snapshot ages by
    /// `clock`.
    pub fn with_clock(
        control: Arc<dyn ControlPlane>,
        options: RegistryOptions,
        clock: SharedClock,
    ) -> Arc<Self> {
        Arc::new(Self {
            control,
            options,
            clock,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            refreshed: watch::Sender::new(0),
        })
    }

    /// The [`generation`](Self::generation) of the snapshot, updated each
    /// time a refresh replaces it: wait on it (`changed`, `wait_for`)
    /// instead of sleeping for refresh periods.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.refreshed.subscribe()
    }

    /// The options in force.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Nodes in the current snapshot.
    pub fn node_count(&self) -> usize {
        self.current().nodes.len()
    }

    /// Successful refreshes so far: changes whenever the snapshot is
    /// replaced, so a decision derived from the snapshot can be cached
    /// until it does.
    pub fn generation(&self) -> u64 {
        self.current().generation
    }

    /// Time since the current snapshot was read; `None` before the first
    /// successful refresh.
    pub fn age(&self) -> Option<Duration> {
        let now = self.clock.now();
        self.current()
            .read_at
            .map(|t| now.saturating_duration_since(t))
    }

    /// Reads nodes and placements once and, on success, replaces the
    /// snapshot. On failure the snapshot is kept. Counts the attempt in
    /// `metrics`.
    ///
    /// # Errors
    /// [`RefreshError`].
    pub async fn refresh(&self, metrics: &EdgeMetrics) -> Result<(), RefreshError> {
        let result = self.read().await;
        let label = match &result {
            Ok(()) => "ok",
            Err(RefreshError::Timeout(_)) => "timeout",
            Err(RefreshError::Control(_)) => "error",
        };
        metrics
            .registry_refresh
            .get_or_create(&vec![("result", label.to_owned())])
            .inc();
        let snapshot = self.current();
        metrics
            .registry_nodes
            .set(i64::try_from(snapshot.nodes.len()).unwrap_or(i64::MAX));
        metrics
            .registry_placements
            .set(i64::try_from(snapshot.placements.len()).unwrap_or(i64::MAX));
        if let Some(age) = self.age() {
            metrics.registry_snapshot_age_seconds.set(age.as_secs_f64());
        }
        result
    }

    async fn read(&self) -> Result<(), RefreshError> {
        let read = async {
            let (nodes, placements) =
                futures::future::try_join(self.control.nodes(), self.control.placements()).await?;
            Ok::<_, ControlError>((nodes, placements))
        };
        let (nodes, placements) = tokio::time::timeout(self.options.timeout, read)
            .await
            .map_err(|_| RefreshError::Timeout(self.options.timeout))?
            .map_err(RefreshError::Control)?;
        let generation = self.current().generation.wrapping_add(1);
        let mut snapshot = convert(&nodes, &placements, self.clock.unix_millis(), &self.options);
        snapshot.read_at = Some(self.clock.now());
        snapshot.generation = generation;
        debug!(
            nodes = snapshot.nodes.len(),
            placements = snapshot.placements.len(),
            "registry snapshot"
        );
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        self.refreshed.send_replace(generation);
        Ok(())
    }

    /// Starts the background task that refreshes the snapshot every
    /// [`RegistryOptions::refresh`] until the handle is aborted (the
    /// [`Edge`](crate::Edge) aborts it when dropped). An outage is logged
    /// once when it begins (`warn`) and once when it ends (`info`, with its
    /// duration).
    pub fn spawn_refresh(self: &Arc<Self>, metrics: Arc<EdgeMetrics>) -> JoinHandle<()> {
        let registry = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(registry.options.refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut outage: Option<Instant> = None;
            loop {
                tick.tick().await;
                match registry.refresh(&metrics).await {
                    Ok(()) => {
                        if let Some(since) = outage.take() {
                            info!(
                                backend = registry.control.backend(),
                                outage = ?registry.clock.now().saturating_duration_since(since),
                                "control plane reachable again; registry snapshot refreshed"
                            );
                        }
                    }
                    Err(error) => {
                        if outage.is_none() {
                            warn!(
                                backend = registry.control.backend(),
                                %error,
                                snapshot_age = ?registry.age(),
                                "control plane unreachable; routing with the last registry snapshot"
                            );
                            outage = Some(registry.clock.now());
                        }
                    }
                }
            }
        })
    }
}

impl RegistryView for ControlRegistry {
    fn nodes(&self) -> Vec<OriginNode> {
        self.current().nodes.clone()
    }

    fn placement(&self, stream: &str) -> Option<String> {
        let name = stream.strip_prefix("live/").unwrap_or(stream);
        self.current().placements.get(name).cloned()
    }
}

/// Converts one registry read taken at `now` (Unix ms); see
/// [`ControlRegistry`] for the rules.
fn convert(
    nodes: &[NodeInfo],
    placements: &[Placement],
    now: u64,
    options: &RegistryOptions,
) -> Snapshot {
    let max_age = u64::try_from(options.max_heartbeat_age.as_millis()).unwrap_or(u64::MAX);
    let region_location = |region: &str| {
        nodes
            .iter()
            .filter(|n| n.region == region)
            .find_map(|n| n.location)
    };
    let nodes = nodes
        .iter()
        .filter_map(|n| {
            let Some(http) = n.urls.get("http") else {
                debug!(node = %n.id, "registry node without an http URL left out");
                return None;
            };
            let age = now.saturating_sub(n.heartbeat_at);
            let location = n.location.or_else(|| region_location(&n.region)).map_or(
                options.default_location,
                |(lat_deg, lon_deg)| GeoPoint { lat_deg, lon_deg },
            );
            Some(OriginNode {
                id: n.id.clone(),
                region: n.region.clone(),
                location,
                healthy: !n.draining && age <= max_age,
                load: n.load.load,
                heartbeat_age_ms: age,
                base_url: http.trim_end_matches('/').to_owned(),
                webtransport_url: n.urls.get("webtransport").cloned(),
                certificate_sha256: n
                    .certificate_sha256
                    .iter()
                    .filter_map(|hex| hex_32(hex))
                    .collect(),
            })
        })
        .collect();
    let placements = placements
        .iter()
        .map(|p| (p.stream.clone(), p.node_id.clone()))
        .collect();
    Snapshot {
        nodes,
        placements,
        read_at: None,
        generation: 0,
    }
}

/// 64 hex digits as 32 bytes; `None` for anything else.
fn hex_32(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use livestack_control::{Clock, ManualClock, MemoryControlPlane, NodeLoad, now_millis};

    use super::*;

    fn info(id: &str, region: &str, location: Option<(f64, f64)>, heartbeat_at: u64) -> NodeInfo {
        NodeInfo {
            certificate_sha256: Vec::new(),
            id: id.into(),
            region: region.into(),
            location,
            urls: BTreeMap::from([
                ("http".to_owned(), format!("http://{id}.example:8080/")),
                (
                    "webtransport".to_owned(),
                    format!("https://{id}.example/moq"),
                ),
            ]),
            load: NodeLoad {
                load: 0.25,
                ..NodeLoad::default()
            },
            draining: false,
            started_at: 0,
            heartbeat_at,
        }
    }

    fn placement(stream: &str, node: &str) -> Placement {
        Placement {
            stream: stream.into(),
            node_id: node.into(),
            session_id: format!("{node}-1"),
            since: 0,
            bitrate_bps: 0,
            viewers: 0,
        }
    }

    #[test]
    fn node_info_becomes_origin_node() {
        let now = 1_000_000;
        let mut draining = info("c", "eu", None, now);
        draining.draining = true;
        let mut no_http = info("d", "eu", None, now);
        no_http.urls.remove("http");
        let nodes = [
            info("a", "eu", Some((48.85, 2.35)), now - 1_500),
            info("b", "eu", None, now - 10_001),
            draining,
            no_http,
            info("e", "ap", None, now + 5),
        ];
        let s = convert(
            &nodes,
            &[placement("cam1", "a")],
            now,
            &RegistryOptions::default(),
        );
        let ids: Vec<&str> = s.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "e"], "no http URL, no node");
        let a = &s.nodes[0];
        assert_eq!(a.base_url, "http://a.example:8080");
        assert_eq!(a.webtransport_url.as_deref(), Some("https://a.example/moq"));
        assert_eq!((a.healthy, a.heartbeat_age_ms, a.load), (true, 1_500, 0.25));
        assert_eq!((a.location.lat_deg, a.location.lon_deg), (48.85, 2.35));
        let b = &s.nodes[1];
        assert!(!b.healthy, "heartbeat older than 10 s");
        assert_eq!(b.location, a.location, "the region's location");
        assert!(!s.nodes[2].healthy, "draining");
        let e = &s.nodes[3];
        assert_eq!(e.heartbeat_age_ms, 0, "a clock ahead of ours");
        assert!(e.healthy);
        assert_eq!(e.location, RegistryOptions::default().default_location);
        assert_eq!(s.placements.get("cam1").map(String::as_str), Some("a"));
    }

    #[tokio::test]
    async fn refresh_reads_the_control_plane_and_keeps_the_snapshot() {
        let control = MemoryControlPlane::new();
        let metrics = EdgeMetrics::new();
        let registry = ControlRegistry::new(control.clone(), RegistryOptions::default());
        assert!(registry.nodes().is_empty());
        assert_eq!(registry.age(), None);
        control
            .register_node(
                &info("a", "eu", Some((1.0, 2.0)), now_millis()),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        control
            .claim_stream(&placement("cam1", "a"), Duration::from_secs(60))
            .await
            .unwrap();
        registry.refresh(&metrics).await.unwrap();
        assert_eq!(registry.node_count(), 1);
        assert_eq!(registry.generation(), 1);
        assert_eq!(registry.placement("cam1").as_deref(), Some("a"));
        assert_eq!(registry.placement("live/cam1").as_deref(), Some("a"));
        assert_eq!(registry.placement("cam2"), None);
        let text = metrics.encode();
        assert!(
            text.contains("livestack_edge_registry_refresh_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("livestack_edge_registry_nodes 1"), "{text}");
    }

    /// Waits (generously) until a refresh leaves `registry` in a state
    /// where `ready` holds.
    async fn refreshed_until(registry: &ControlRegistry, ready: impl Fn(&ControlRegistry) -> bool) {
        let mut refreshed = registry.subscribe();
        tokio::time::timeout(
            Duration::from_secs(30),
            refreshed.wait_for(|_| ready(registry)),
        )
        .await
        .expect("no refresh reached the expected state")
        .expect("the registry is alive");
    }

    #[tokio::test]
    async fn the_refresh_task_ages_heartbeats_by_the_registry_clock() {
        let clock = ManualClock::new();
        let control = MemoryControlPlane::with_clock(clock.shared());
        let options = RegistryOptions {
            refresh: Duration::from_millis(10),
            ..RegistryOptions::default()
        };
        let registry = ControlRegistry::with_clock(control.clone(), options, clock.shared());
        let ttl = Duration::from_secs(60);
        let a = info("a", "eu", None, clock.unix_millis());
        control.register_node(&a, ttl).await.unwrap();
        let task = registry.spawn_refresh(Arc::new(EdgeMetrics::new()));

        refreshed_until(&registry, |r| r.nodes().first().is_some_and(|n| n.healthy)).await;
        assert_eq!(registry.nodes()[0].heartbeat_age_ms, 0);
        // No heartbeat for longer than `max_heartbeat_age`: unhealthy,
        // though still registered.
        clock.advance(DEFAULT_MAX_HEARTBEAT_AGE + Duration::from_millis(1));
        refreshed_until(&registry, |r| r.nodes().first().is_some_and(|n| !n.healthy)).await;
        assert_eq!(registry.nodes()[0].heartbeat_age_ms, 10_001);
        assert_eq!(
            registry.age(),
            Some(Duration::ZERO),
            "read at the clock's now"
        );
        // The registry record's TTL runs out: the node is gone.
        clock.advance(ttl);
        refreshed_until(&registry, |r| r.node_count() == 0).await;
        task.abort();
    }
}
