//! Origin selection through the routing component: the same choices as
//! `livestack-routing` on the same registry (nearest region, rendezvous
//! hashing, placement, bounded load, failover, no healthy node).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use livestack_edge::{
    ClientGeo, ComponentLimits, Components, GeoPoint, HostImports, OriginNode, RouteReason,
    RoutingError, StaticRegistry,
};
use livestack_routing as native;

fn geo(lat: f64, lon: f64) -> ClientGeo {
    ClientGeo {
        location: Some(GeoPoint {
            lat_deg: lat,
            lon_deg: lon,
        }),
        country: None,
    }
}

/// One `Components` for this binary (compiling is the slow part in a
/// debug host); each test swaps in its registry and config under the lock.
fn components_with(
    registry: StaticRegistry,
    config: &[(&str, &str)],
) -> MutexGuard<'static, Components> {
    static COMPONENTS: OnceLock<Mutex<Components>> = OnceLock::new();
    let components = COMPONENTS
        .get_or_init(|| {
            Mutex::new(
                Components::load(None, ComponentLimits::default(), common::imports()).unwrap(),
            )
        })
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    components.set_imports(HostImports {
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        registry: Arc::new(registry),
        ..common::imports()
    });
    components
}

fn native_nodes(nodes: &[OriginNode]) -> Vec<native::OriginNode> {
    nodes
        .iter()
        .map(|n| native::OriginNode {
            id: n.id.clone(),
            region: n.region.clone(),
            location: native::GeoPoint::new(n.location.lat_deg, n.location.lon_deg),
            healthy: n.healthy,
            load: n.load,
            heartbeat_age: Duration::from_millis(n.heartbeat_age_ms),
        })
        .collect()
}

fn six_nodes() -> StaticRegistry {
    let mut nodes = Vec::new();
    for (region, lat, lon) in [("eu-west", 53.3, -6.3), ("us-east", 39.0, -77.5)] {
        for i in 1..=3 {
            nodes.push(common::node(&format!("{region}-{i}"), region, lat, lon));
        }
    }
    StaticRegistry {
        nodes,
        placements: HashMap::new(),
    }
}

#[test]
fn same_choice_as_the_native_crate() {
    let registry = six_nodes();
    let components = components_with(registry.clone(), &[]);
    let natives = native_nodes(&registry.nodes);
    let clients = [
        geo(52.52, 13.40),
        geo(40.7, -74.0),
        ClientGeo {
            location: None,
            country: Some("US".into()),
        },
        ClientGeo {
            location: None,
            country: None,
        },
    ];
    for client in &clients {
        for i in 0..20 {
            let stream = format!("stream-{i}");
            let route = components.route(&stream, client).unwrap().unwrap();
            let native_geo = native::ClientGeo {
                location: client
                    .location
                    .map(|p| native::GeoPoint::new(p.lat_deg, p.lon_deg)),
                country: client.country.as_deref(),
            };
            let want = native::pick(
                &stream,
                &native_geo,
                &natives,
                None,
                &native::Policy::default(),
            )
            .unwrap();
            assert_eq!(route.node.id, want.node_id, "{stream} {client:?}");
            assert_eq!(
                route.node.base_url,
                format!(
                    "https://{0}.{1}.example:8443",
                    route.node.id, route.node.region
                )
            );
        }
    }
    // Berlin goes to Europe by rendezvous hashing, New York to the US.
    let berlin = components
        .route("cam1", &geo(52.52, 13.40))
        .unwrap()
        .unwrap();
    assert_eq!(
        (berlin.node.region.as_str(), berlin.reason),
        ("eu-west", RouteReason::Rendezvous)
    );
    let new_york = components
        .route("cam1", &geo(40.7, -74.0))
        .unwrap()
        .unwrap();
    assert_eq!(new_york.node.region, "us-east");
}

#[test]
fn placement_wins_then_failover() {
    let mut registry = six_nodes();
    registry
        .placements
        .insert("cam1".into(), "us-east-2".into());
    let components = components_with(registry.clone(), &[]);
    let route = components
        .route("cam1", &geo(52.52, 13.40))
        .unwrap()
        .unwrap();
    assert_eq!(
        (route.node.id.as_str(), route.reason),
        ("us-east-2", RouteReason::Placement)
    );
    drop(components);

    // The nearest region is down: failover to the next region.
    for node in &mut registry.nodes {
        if node.region == "eu-west" {
            node.healthy = false;
        }
    }
    registry.placements.clear();
    let components = components_with(registry, &[]);
    let route = components
        .route("cam1", &geo(52.52, 13.40))
        .unwrap()
        .unwrap();
    assert_eq!(route.node.region, "us-east");
    assert!(
        matches!(route.reason, RouteReason::Failover((1, 0))),
        "{:?}",
        route.reason
    );
}

#[test]
fn bounded_load_and_no_node() {
    let mut registry = six_nodes();
    for node in &mut registry.nodes {
        node.load = 0.9;
    }
    let components = components_with(registry.clone(), &[]);
    assert_eq!(
        components.route("cam1", &geo(52.52, 13.40)).unwrap(),
        Err(RoutingError::NoCapacity)
    );
    drop(components);
    // The cap comes from config.
    let components = components_with(registry.clone(), &[("routing.load-cap", "0.95")]);
    assert!(
        components
            .route("cam1", &geo(52.52, 13.40))
            .unwrap()
            .is_ok()
    );
    drop(components);

    // Stale heartbeats count as dead.
    for node in &mut registry.nodes {
        node.heartbeat_age_ms = 60_000;
    }
    let components = components_with(registry, &[]);
    assert_eq!(
        components.route("cam1", &geo(52.52, 13.40)).unwrap(),
        Err(RoutingError::NoHealthyNode)
    );
    drop(components);
    let empty = components_with(StaticRegistry::default(), &[]);
    assert_eq!(
        empty.route("cam1", &geo(0.0, 0.0)).unwrap(),
        Err(RoutingError::NoHealthyNode)
    );
}
