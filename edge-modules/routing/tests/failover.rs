//! Failover: a dead or stale top node hands its streams to the next-ranked
//! node of the same region; a dead region hands over to the next region.

mod common;

use std::time::Duration;

use common::{ids, registry};
use livestack_routing::{
    ClientGeo, GeoPoint, OriginNode, Policy, RouteReason, RoutingError, pick, rank,
};

const BERLIN: ClientGeo<'static> = ClientGeo {
    location: Some(GeoPoint::new(52.52, 13.405)),
    country: None,
};

fn set(nodes: &mut [OriginNode], id: &str, change: impl FnOnce(&mut OriginNode)) {
    change(nodes.iter_mut().find(|n| n.id == id).expect("node exists"));
}

#[test]
fn unhealthy_top_node_fails_over_to_the_next_ranked() {
    let mut nodes = registry();
    let policy = Policy::default();
    let ranking: Vec<String> = ids(&rank("live/stream-0", &BERLIN, &nodes, None, &policy))
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(&ranking[..2], ["fra-4", "fra-1"]);

    set(&mut nodes, "fra-4", |n| n.healthy = false);
    let route = pick("live/stream-0", &BERLIN, &nodes, None, &policy).unwrap();
    assert_eq!(route.node_id, "fra-1");
    assert_eq!(
        route.reason,
        RouteReason::Failover {
            region_rank: 0,
            node_rank: 1
        }
    );
    // The ranking itself does not change with health.
    assert_eq!(
        ids(&rank("live/stream-0", &BERLIN, &nodes, None, &policy)),
        ranking
    );

    set(&mut nodes, "fra-1", |n| n.healthy = false);
    assert_eq!(
        pick("live/stream-0", &BERLIN, &nodes, None, &policy)
            .unwrap()
            .node_id,
        "fra-2"
    );
}

#[test]
fn stale_heartbeat_counts_as_unhealthy() {
    let mut nodes = registry();
    let policy = Policy::default();
    set(&mut nodes, "fra-4", |n| {
        n.heartbeat_age = Duration::from_secs(10)
    });
    assert_eq!(
        pick("live/stream-0", &BERLIN, &nodes, None, &policy)
            .unwrap()
            .node_id,
        "fra-4"
    );
    set(&mut nodes, "fra-4", |n| {
        n.heartbeat_age = Duration::from_millis(10_001)
    });
    assert_eq!(
        pick("live/stream-0", &BERLIN, &nodes, None, &policy)
            .unwrap()
            .node_id,
        "fra-1"
    );
    let lenient = Policy {
        max_heartbeat_age: Duration::from_secs(30),
        ..Policy::default()
    };
    assert_eq!(
        pick("live/stream-0", &BERLIN, &nodes, None, &lenient)
            .unwrap()
            .node_id,
        "fra-4"
    );
}

#[test]
fn dead_region_fails_over_to_the_next_nearest_region() {
    let mut nodes = registry();
    for node in nodes.iter_mut().filter(|n| n.region == "eu-central") {
        node.healthy = false;
    }
    let route = pick("live/stream-0", &BERLIN, &nodes, None, &Policy::default()).unwrap();
    assert_eq!((route.node_id, route.region), ("dub-1", "eu-west"));
    assert_eq!(
        route.reason,
        RouteReason::Failover {
            region_rank: 1,
            node_rank: 0
        }
    );
}

#[test]
fn every_viewer_of_a_stream_lands_on_one_node() {
    let nodes = registry();
    let policy = Policy::default();
    // Clients all over Germany: same region, same node.
    for (lat, lon) in [
        (52.52, 13.405),
        (48.137, 11.575),
        (53.551, 9.993),
        (50.937, 6.96),
    ] {
        let client = ClientGeo {
            location: Some(GeoPoint::new(lat, lon)),
            country: None,
        };
        assert_eq!(
            pick("live/stream-3", &client, &nodes, None, &policy)
                .unwrap()
                .node_id,
            "fra-1"
        );
    }
}

#[test]
fn nothing_healthy() {
    let mut nodes = registry();
    for node in &mut nodes {
        node.healthy = false;
    }
    let policy = Policy::default();
    assert_eq!(
        pick("s", &BERLIN, &nodes, None, &policy),
        Err(RoutingError::NoHealthyNode)
    );
    assert_eq!(
        pick("s", &BERLIN, &[], None, &policy),
        Err(RoutingError::NoHealthyNode)
    );
    assert!(rank("s", &BERLIN, &[], None, &policy).is_empty());
}
