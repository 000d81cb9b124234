//! Origins that relay (`routing.nearest-region-first`): a viewer goes to
//! its own region, where the placement node comes first only if it is
//! there; each region's rendezvous node pulls the stream once.

mod common;

use common::{ids, registry};
use livestack_routing::{ClientGeo, GeoPoint, Policy, RouteReason, pick, rank};

const BERLIN: ClientGeo<'static> = ClientGeo {
    location: Some(GeoPoint::new(52.52, 13.405)),
    country: None,
};
const WASHINGTON: ClientGeo<'static> = ClientGeo {
    location: Some(GeoPoint::new(38.90, -77.04)),
    country: None,
};

fn relaying() -> Policy<'static> {
    Policy {
        nearest_region_first: true,
        ..Policy::default()
    }
}

#[test]
fn a_viewer_stays_in_its_region_when_origins_relay() {
    let nodes = registry();
    // Default: the placement node wherever the viewer is.
    let route = pick("live/s", &BERLIN, &nodes, Some("iad-2"), &Policy::default()).unwrap();
    assert_eq!(
        (route.node_id, route.reason),
        ("iad-2", RouteReason::Placement)
    );

    // Relaying: Berlin's region, the stream's rendezvous node there (the
    // same one without any placement), the placement node after every
    // node of the nearer regions.
    let route = pick("live/s", &BERLIN, &nodes, Some("iad-2"), &relaying()).unwrap();
    let unplaced = pick("live/s", &BERLIN, &nodes, None, &relaying()).unwrap();
    assert_eq!(route.region, "eu-central");
    assert_eq!(route.reason, RouteReason::Rendezvous);
    assert_eq!(route.node_id, unplaced.node_id);
    let order = ids(&rank("live/s", &BERLIN, &nodes, Some("iad-2"), &relaying()));
    let placed = order.iter().position(|n| *n == "iad-2").unwrap();
    assert!(order[..placed].iter().all(|n| !n.starts_with("iad")));
    assert!(order[..placed].iter().any(|n| n.starts_with("dub")));

    // A viewer in the placement node's region still goes to it first.
    let route = pick("live/s", &WASHINGTON, &nodes, Some("iad-2"), &relaying()).unwrap();
    assert_eq!(
        (route.node_id, route.reason),
        ("iad-2", RouteReason::Placement)
    );
}

#[test]
fn full_nearest_region_fails_over_by_distance() {
    let mut nodes = registry();
    for n in nodes.iter_mut().filter(|n| n.region == "eu-central") {
        n.load = 0.9;
    }
    let route = pick("live/s", &BERLIN, &nodes, Some("iad-2"), &relaying()).unwrap();
    assert_eq!(route.region, "eu-west");
    assert!(matches!(
        route.reason,
        RouteReason::Failover {
            region_rank: 1,
            node_rank: 0
        }
    ));
}

#[test]
fn policy_reads_the_edge_configuration() {
    let config = |k: &str| match k {
        "routing.nearest-region-first" => Some("true".to_owned()),
        "routing.load-cap" => Some("0.5".to_owned()),
        _ => None,
    };
    let p = Policy::from_config(config).unwrap();
    assert!(p.nearest_region_first);
    assert_eq!(p.load_cap, 0.5);
    assert!(!Policy::from_config(|_| None).unwrap().nearest_region_first);
    let bad =
        Policy::from_config(|k| (k == "routing.nearest-region-first").then(|| "yes".to_owned()));
    assert_eq!(
        bad.unwrap_err(),
        "routing.nearest-region-first is neither true nor false"
    );
}
