//! Bounded load: nodes at or above the load cap take no new viewers.

mod common;

use common::registry;
use livestack_routing::{
    ClientGeo, DEFAULT_LOAD_CAP, GeoPoint, Policy, RouteReason, RoutingError, pick,
};

const BERLIN: ClientGeo<'static> = ClientGeo {
    location: Some(GeoPoint::new(52.52, 13.405)),
    country: None,
};

#[test]
fn the_cap_is_exclusive_and_configurable() {
    assert_eq!(DEFAULT_LOAD_CAP, 0.85);
    let mut nodes = registry();
    let policy = Policy::default();
    let top = |nodes: &[_], policy: &Policy<'_>| {
        pick("live/stream-0", &BERLIN, nodes, None, policy)
            .unwrap()
            .node_id
            .to_owned()
    };
    let fra4 = nodes.iter().position(|n| n.id == "fra-4").unwrap();
    nodes[fra4].load = 0.849;
    assert_eq!(top(&nodes, &policy), "fra-4");
    nodes[fra4].load = 0.85;
    assert_eq!(top(&nodes, &policy), "fra-1");
    nodes[fra4].load = f64::NAN;
    assert_eq!(top(&nodes, &policy), "fra-1", "unknown load counts as full");
    nodes[fra4].load = 0.9;
    let relaxed = Policy {
        load_cap: 0.95,
        ..Policy::default()
    };
    assert_eq!(top(&nodes, &relaxed), "fra-4");
    let off = Policy {
        load_cap: 1.5,
        ..Policy::default()
    };
    nodes[fra4].load = 1.0;
    assert_eq!(top(&nodes, &off), "fra-4");
}

#[test]
fn a_full_region_overflows_to_the_next_nearest() {
    let mut nodes = registry();
    for node in nodes.iter_mut().filter(|n| n.region == "eu-central") {
        node.load = 0.9;
    }
    let route = pick("live/stream-0", &BERLIN, &nodes, None, &Policy::default()).unwrap();
    assert_eq!(route.region, "eu-west");
    assert!(matches!(
        route.reason,
        RouteReason::Failover { region_rank: 1, .. }
    ));
}

#[test]
fn everything_full_is_no_capacity() {
    let mut nodes = registry();
    for node in &mut nodes {
        node.load = 0.99;
    }
    nodes[0].healthy = false;
    assert_eq!(
        pick("s", &BERLIN, &nodes, None, &Policy::default()),
        Err(RoutingError::NoCapacity)
    );
}

#[test]
fn load_spreads_a_hot_stream_in_rank_order() {
    // As the top node fills, viewers go to the second, then the third:
    // always the same order, so caches stay warm on few nodes.
    let mut nodes = registry();
    let mut chosen = Vec::new();
    for _ in 0..4 {
        let id = pick("live/stream-0", &BERLIN, &nodes, None, &Policy::default())
            .unwrap()
            .node_id
            .to_owned();
        nodes.iter_mut().find(|n| n.id == id).unwrap().load = 0.85;
        chosen.push(id);
    }
    assert_eq!(chosen, ["fra-4", "fra-1", "fra-2", "fra-3"]);
}
