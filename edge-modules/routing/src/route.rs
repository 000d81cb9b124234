//! Ranking and picking origin nodes.

use std::cmp::Ordering;
use std::time::Duration;

use crate::country::{DEFAULT_COUNTRY_REGIONS, home_region};
use crate::geo::{GeoPoint, haversine_km};
use crate::hash::StreamHash;

/// One origin node as the registry reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginNode {
    /// Unique node id, e.g. `"origin-eu-west-1a"`; the rendezvous hash and
    /// ties use it.
    pub id: String,
    /// Region name, e.g. `"eu-west"`.
    pub region: String,
    /// Location of the node's **region** (every node of a region should
    /// carry the same point; the first listed node's is used).
    pub location: GeoPoint,
    /// The registry's health flag.
    pub healthy: bool,
    /// Load as a fraction of capacity, 0.0..=1.0 (NaN counts as full).
    pub load: f64,
    /// Time since the node's last heartbeat reached the registry.
    pub heartbeat_age: Duration,
}

/// What is known of the client's location. With [`location`](Self::location)
/// the country is not used; with neither, all regions are equally near.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientGeo<'a> {
    /// Coordinates from the edge's geo lookup.
    pub location: Option<GeoPoint>,
    /// ISO 3166-1 alpha-2 country code, any case, e.g. `"de"`.
    pub country: Option<&'a str>,
}

/// Default of [`Policy::load_cap`].
pub const DEFAULT_LOAD_CAP: f64 = 0.85;
/// Default of [`Policy::max_heartbeat_age`]: three missed heartbeats at the
/// registry's 5 s interval would be 15 s; 10 s fails over sooner, at the
/// price of a flapping node on a slow registry.
pub const DEFAULT_MAX_HEARTBEAT_AGE: Duration = Duration::from_secs(10);

/// Routing knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy<'a> {
    /// Bounded load: nodes whose [`OriginNode::load`] is at or above this
    /// fraction take no new viewers. Default [`DEFAULT_LOAD_CAP`] (0.85).
    /// A value above 1.0 turns bounded load off.
    pub load_cap: f64,
    /// A node whose heartbeat is older than this is treated as unhealthy,
    /// whatever its flag says (the registry entry is stale). Default
    /// [`DEFAULT_MAX_HEARTBEAT_AGE`].
    pub max_heartbeat_age: Duration,
    /// Country (ISO 3166-1 alpha-2) → home region, used when the client's
    /// coordinates are unknown. Default [`DEFAULT_COUNTRY_REGIONS`].
    pub country_regions: &'a [(&'a str, &'a str)],
    /// Nearest region first, even before the placement node: for
    /// deployments whose origins relay streams to each other (an origin
    /// pulls a stream it does not hold from the placement node, see the
    /// origin's `relay` module), so a viewer is served from its own region
    /// and each region pulls a stream once (its rendezvous node). Within a
    /// region the placement node still comes first. Default false: the
    /// placement node first, wherever the viewer is.
    pub nearest_region_first: bool,
}

impl Default for Policy<'static> {
    fn default() -> Self {
        Self {
            load_cap: DEFAULT_LOAD_CAP,
            max_heartbeat_age: DEFAULT_MAX_HEARTBEAT_AGE,
            country_regions: DEFAULT_COUNTRY_REGIONS,
            nearest_region_first: false,
        }
    }
}

impl Policy<'static> {
    /// The default policy with the edge's `routing.*` configuration keys
    /// applied, `get` reading a key: `routing.load-cap` (a fraction),
    /// `routing.max-heartbeat-age-ms` (milliseconds),
    /// `routing.nearest-region-first` (`true`/`false`).
    ///
    /// # Errors
    /// A message naming the key whose value does not parse.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut policy = Policy::default();
        if let Some(cap) = get("routing.load-cap") {
            policy.load_cap = cap
                .trim()
                .parse()
                .map_err(|_| "routing.load-cap is not a number".to_owned())?;
        }
        if let Some(ms) = get("routing.max-heartbeat-age-ms") {
            policy.max_heartbeat_age = Duration::from_millis(
                ms.trim()
                    .parse()
                    .map_err(|_| "routing.max-heartbeat-age-ms is not a number".to_owned())?,
            );
        }
        if let Some(b) = get("routing.nearest-region-first") {
            policy.nearest_region_first = b
                .trim()
                .parse()
                .map_err(|_| "routing.nearest-region-first is neither true nor false".to_owned())?;
        }
        Ok(policy)
    }
}

impl Policy<'_> {
    /// Healthy flag set and heartbeat fresh.
    fn alive(&self, node: &OriginNode) -> bool {
        node.healthy && node.heartbeat_age <= self.max_heartbeat_age
    }

    /// Alive and below the load cap.
    fn eligible(&self, node: &OriginNode) -> bool {
        self.alive(node) && node.load < self.load_cap
    }
}

/// Where a viewer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'n> {
    /// [`OriginNode::id`] of the chosen node.
    pub node_id: &'n str,
    /// Its [`OriginNode::region`].
    pub region: &'n str,
    /// Why this node.
    pub reason: RouteReason,
}

/// Why [`pick`] chose a node. Ranks are 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteReason {
    /// The stream's placement node: it holds the publisher.
    Placement,
    /// The placement node is alive but at the load cap; this is the
    /// `node_rank`-th node of its region by rendezvous score (skipping it).
    PlacementRegion {
        /// Rank by rendezvous score among the region's other nodes.
        node_rank: usize,
    },
    /// The top rendezvous node of the nearest region.
    Rendezvous,
    /// Nodes ranked above were dead or full: this is the `node_rank`-th
    /// node by rendezvous score of the `region_rank`-th nearest region.
    Failover {
        /// Rank of the region by distance (0 = nearest).
        region_rank: usize,
        /// Rank of the node in its region by rendezvous score.
        node_rank: usize,
    },
}

/// Why no node could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// No node is healthy with a fresh heartbeat (or there are no nodes).
    /// HTTP 503.
    #[error("no healthy origin node")]
    NoHealthyNode,
    /// Healthy nodes exist but every one is at or above the load cap.
    /// HTTP 503 with `Retry-After`.
    #[error("every healthy origin node is at its load cap")]
    NoCapacity,
}

/// Which part of the ranking a node is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Placement,
    PlacementRegion,
    Geo,
}

struct Ranked<'n> {
    node: &'n OriginNode,
    stage: Stage,
    region_rank: usize,
    score: u64,
}

/// Ranks every node for `stream`, best first; [`pick`] takes the first
/// eligible one (alive: healthy flag and heartbeat within
/// [`Policy::max_heartbeat_age`]; and load below [`Policy::load_cap`]).
///
/// Order, the precedence [`pick`] follows:
///
/// 1. The placement node, if `placement` names a node that is alive. It
///    holds the stream's publisher, so its viewers go there first.
/// 2. If it is alive, the other nodes of its region, by rendezvous score:
///    they are next to the stream's source when the node itself is full.
///    A dead placement node is stale placement and is ignored.
/// 3. Every other node: regions nearest first, then within each region by
///    rendezvous score ([`hrw_score`](crate::hrw_score), highest first,
///    ties by id), so every viewer of a stream lands on the same node and
///    its failover is the next-ranked node of the region.
///
/// With [`Policy::nearest_region_first`] (origins that relay), regions
/// nearest first come before everything: within each region the placement
/// node (if alive and there), then the others by rendezvous score.
///
/// Region distance: the haversine distance ([`haversine_km`]) from
/// [`ClientGeo::location`]; without it, from the location of the
/// country's home region ([`Policy::country_regions`]; the home region
/// comes first); without either (or when the home region is not in the
/// registry) all regions are equal. Ties are broken by region name, so the
/// order is total and identical on every platform.
///
/// Cost: O(n log n) for n nodes, one allocation.
pub fn rank<'n>(
    stream: &str,
    client: &ClientGeo<'_>,
    nodes: &'n [OriginNode],
    placement: Option<&str>,
    policy: &Policy<'_>,
) -> Vec<&'n OriginNode> {
    ranked(stream, client, nodes, placement, policy)
        .into_iter()
        .map(|r| r.node)
        .collect()
}

/// Picks the origin node for a viewer of `stream`: the first eligible node
/// of [`rank`] (see there for the precedence: placement, its region, then
/// nearest region by rendezvous hashing with bounded load).
///
/// # Errors
///
/// [`RoutingError::NoHealthyNode`] if no node is alive,
/// [`RoutingError::NoCapacity`] if all alive nodes are at the load cap.
pub fn pick<'n>(
    stream: &str,
    client: &ClientGeo<'_>,
    nodes: &'n [OriginNode],
    placement: Option<&str>,
    policy: &Policy<'_>,
) -> Result<Route<'n>, RoutingError> {
    let ranked = ranked(stream, client, nodes, placement, policy);
    let mut previous: Option<(Stage, usize)> = None;
    let mut node_rank = 0;
    for entry in &ranked {
        let group = (entry.stage, entry.region_rank);
        node_rank = if previous == Some(group) {
            node_rank + 1
        } else {
            0
        };
        previous = Some(group);
        if !policy.eligible(entry.node) {
            continue;
        }
        let reason = match entry.stage {
            Stage::Placement => RouteReason::Placement,
            Stage::PlacementRegion => RouteReason::PlacementRegion { node_rank },
            Stage::Geo if entry.region_rank == 0 && node_rank == 0 => RouteReason::Rendezvous,
            Stage::Geo => RouteReason::Failover {
                region_rank: entry.region_rank,
                node_rank,
            },
        };
        return Ok(Route {
            node_id: &entry.node.id,
            region: &entry.node.region,
            reason,
        });
    }
    if nodes.iter().any(|n| policy.alive(n)) {
        Err(RoutingError::NoCapacity)
    } else {
        Err(RoutingError::NoHealthyNode)
    }
}

fn ranked<'n>(
    stream: &str,
    client: &ClientGeo<'_>,
    nodes: &'n [OriginNode],
    placement: Option<&str>,
    policy: &Policy<'_>,
) -> Vec<Ranked<'n>> {
    let regions = region_order(client, nodes, policy);
    let placed = placement
        .and_then(|id| nodes.iter().find(|n| n.id == id))
        .filter(|n| policy.alive(n));
    let hash = StreamHash::new(stream);
    let mut ranked: Vec<Ranked<'n>> = nodes
        .iter()
        .map(|node| {
            let stage = match placed {
                Some(p) if core::ptr::eq(p, node) => Stage::Placement,
                Some(p) if !policy.nearest_region_first && p.region == node.region => {
                    Stage::PlacementRegion
                }
                _ => Stage::Geo,
            };
            let region_rank = regions
                .iter()
                .position(|r| *r == node.region)
                .unwrap_or(regions.len());
            Ranked {
                node,
                stage,
                region_rank,
                score: hash.score(&node.id),
            }
        })
        .collect();
    ranked.sort_unstable_by(|a, b| {
        let first = if policy.nearest_region_first {
            a.region_rank
                .cmp(&b.region_rank)
                .then(a.stage.cmp(&b.stage))
        } else {
            a.stage
                .cmp(&b.stage)
                .then(a.region_rank.cmp(&b.region_rank))
        };
        first
            .then(b.score.cmp(&a.score))
            .then_with(|| a.node.id.cmp(&b.node.id))
    });
    ranked
}

/// Region names, nearest first (see [`rank`]).
fn region_order<'n>(
    client: &ClientGeo<'_>,
    nodes: &'n [OriginNode],
    policy: &Policy<'_>,
) -> Vec<&'n str> {
    let mut regions: Vec<(&'n str, GeoPoint)> = Vec::new();
    for node in nodes {
        if !regions.iter().any(|(name, _)| *name == node.region) {
            regions.push((&node.region, node.location));
        }
    }
    let origin = match (client.location, client.country) {
        (Some(point), _) => Some((point, None)),
        (None, Some(country)) => home_region(policy.country_regions, country)
            .and_then(|home| regions.iter().find(|(name, _)| *name == home))
            .map(|&(home, point)| (point, Some(home))),
        (None, None) => None,
    };
    let mut keyed: Vec<(bool, f64, &'n str)> = regions
        .iter()
        .map(|&(name, point)| match origin {
            Some((from, home)) => (
                home.is_some_and(|h| h != name),
                haversine_km(from, point),
                name,
            ),
            None => (false, 0.0, name),
        })
        .collect();
    keyed.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then_with(|| a.2.cmp(b.2))
            .then(Ordering::Equal)
    });
    keyed.into_iter().map(|(_, _, name)| name).collect()
}
