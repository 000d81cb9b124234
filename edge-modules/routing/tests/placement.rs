//! Placement precedence: the node holding the publisher first (if alive
//! and below the cap), then its region by rendezvous score, then the
//! geographic ranking.

mod common;

use common::{ids, registry};
use livestack_routing::{ClientGeo, GeoPoint, Policy, RouteReason, pick, rank};

const BERLIN: ClientGeo<'static> = ClientGeo {
    location: Some(GeoPoint::new(52.52, 13.405)),
    country: None,
};

#[test]
fn placement_wins_over_distance() {
    let nodes = registry();
    let route = pick(
        "live/stream-0",
        &BERLIN,
        &nodes,
        Some("iad-3"),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(
        (route.node_id, route.region, route.reason),
        ("iad-3", "us-east", RouteReason::Placement)
    );
    let ranking = ids(&rank(
        "live/stream-0",
        &BERLIN,
        &nodes,
        Some("iad-3"),
        &Policy::default(),
    ));
    // iad-3, then the rest of us-east by score, then Berlin's geo order.
    assert_eq!(
        ranking,
        [
            "iad-3", "iad-1", "iad-2", "iad-4", "fra-4", "fra-1", "fra-2", "fra-3", "dub-1",
            "dub-2", "sin-2", "sin-1"
        ]
    );
}

#[test]
fn full_placement_node_sends_viewers_to_its_region() {
    let mut nodes = registry();
    nodes.iter_mut().find(|n| n.id == "iad-3").unwrap().load = 0.9;
    let route = pick(
        "live/stream-0",
        &BERLIN,
        &nodes,
        Some("iad-3"),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(
        (route.node_id, route.reason),
        ("iad-1", RouteReason::PlacementRegion { node_rank: 0 })
    );
    nodes.iter_mut().find(|n| n.id == "iad-1").unwrap().load = 0.9;
    let route = pick(
        "live/stream-0",
        &BERLIN,
        &nodes,
        Some("iad-3"),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(
        (route.node_id, route.reason),
        ("iad-2", RouteReason::PlacementRegion { node_rank: 1 })
    );
}

#[test]
fn full_placement_region_falls_back_to_geography() {
    let mut nodes = registry();
    for node in nodes.iter_mut().filter(|n| n.region == "us-east") {
        node.load = 0.9;
    }
    let route = pick(
        "live/stream-0",
        &BERLIN,
        &nodes,
        Some("iad-3"),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(
        (route.node_id, route.reason),
        ("fra-4", RouteReason::Rendezvous)
    );
}

#[test]
fn dead_or_unknown_placement_is_ignored() {
    let mut nodes = registry();
    let policy = Policy::default();
    let route = |nodes: &[_], placement| {
        let route = pick("live/stream-0", &BERLIN, nodes, placement, &policy).unwrap();
        (route.node_id.to_owned(), route.reason)
    };
    let plain = route(&nodes, None);
    assert_eq!(plain, ("fra-4".to_owned(), RouteReason::Rendezvous));
    assert_eq!(route(&nodes, Some("gone-9")), plain);
    nodes.iter_mut().find(|n| n.id == "iad-3").unwrap().healthy = false;
    assert_eq!(
        route(&nodes, Some("iad-3")),
        plain,
        "a dead placement node does not pull viewers to its region"
    );
    assert_eq!(
        ids(&rank(
            "live/stream-0",
            &BERLIN,
            &nodes,
            Some("iad-3"),
            &policy
        )),
        ids(&rank("live/stream-0", &BERLIN, &nodes, None, &policy))
    );
}
