//! The routing edge component: `livestack:edge/routing` over
//! `livestack-routing` (placement, nearest healthy region, rendezvous
//! hashing with bounded load).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "routing-component",
});

use std::time::Duration;

use exports::livestack::edge::routing::Guest;
use livestack::edge::types::{ClientGeo, OriginNode, Route, RouteReason, RoutingError};
use livestack::edge::{config, registry};
use livestack_routing as pure;

struct Routing;

impl Guest for Routing {
    fn pick(stream: String, client: ClientGeo) -> Result<Route, RoutingError> {
        let policy = policy().map_err(RoutingError::Other)?;
        let nodes = registry::nodes();
        let pure_nodes: Vec<pure::OriginNode> = nodes.iter().map(node_from_wit).collect();
        let placement = registry::placement(&stream);
        let geo = pure::ClientGeo {
            location: client
                .location
                .map(|p| pure::GeoPoint::new(p.lat_deg, p.lon_deg)),
            country: client.country.as_deref(),
        };
        let route =
            pure::pick(&stream, &geo, &pure_nodes, placement.as_deref(), &policy).map_err(|e| {
                match e {
                    pure::RoutingError::NoHealthyNode => RoutingError::NoHealthyNode,
                    pure::RoutingError::NoCapacity => RoutingError::NoCapacity,
                    other => RoutingError::Other(other.to_string()),
                }
            })?;
        let reason = reason_to_wit(route.reason);
        let index = pure_nodes
            .iter()
            .position(|n| n.id == route.node_id)
            .ok_or_else(|| RoutingError::Other("picked node is not in the registry".into()))?;
        let node = nodes
            .into_iter()
            .nth(index)
            .ok_or_else(|| RoutingError::Other("picked node is not in the registry".into()))?;
        Ok(Route { node, reason })
    }
}

fn node_from_wit(n: &OriginNode) -> pure::OriginNode {
    pure::OriginNode {
        id: n.id.clone(),
        region: n.region.clone(),
        location: pure::GeoPoint::new(n.location.lat_deg, n.location.lon_deg),
        healthy: n.healthy,
        load: n.load,
        heartbeat_age: Duration::from_millis(n.heartbeat_age_ms),
    }
}

fn reason_to_wit(r: pure::RouteReason) -> RouteReason {
    let rank = |r: usize| u32::try_from(r).unwrap_or(u32::MAX);
    match r {
        pure::RouteReason::Placement => RouteReason::Placement,
        pure::RouteReason::PlacementRegion { node_rank } => {
            RouteReason::PlacementRegion(rank(node_rank))
        }
        pure::RouteReason::Rendezvous => RouteReason::Rendezvous,
        pure::RouteReason::Failover {
            region_rank,
            node_rank,
        } => RouteReason::Failover((rank(region_rank), rank(node_rank))),
        other => RouteReason::Other(format!("{other:?}")),
    }
}

/// The policy from the `routing.*` config keys.
fn policy() -> Result<pure::Policy<'static>, String> {
    pure::Policy::from_config(config::get)
}

export!(Routing);
