//! A registry fixture shared by the routing tests.

#![allow(dead_code, reason = "each test crate uses a subset of the fixture")]

use std::time::Duration;

use livestack_routing::{GeoPoint, OriginNode};

pub const FRANKFURT: GeoPoint = GeoPoint::new(50.1109, 8.6821);
pub const ASHBURN: GeoPoint = GeoPoint::new(39.0438, -77.4874);
pub const SINGAPORE: GeoPoint = GeoPoint::new(1.3521, 103.8198);
pub const DUBLIN: GeoPoint = GeoPoint::new(53.3498, -6.2603);

pub fn node(id: &str, region: &str, location: GeoPoint) -> OriginNode {
    OriginNode {
        id: id.into(),
        region: region.into(),
        location,
        healthy: true,
        load: 0.1,
        heartbeat_age: Duration::from_secs(1),
    }
}

/// Four regions: eu-central (4 nodes), eu-west (2), us-east (4),
/// ap-southeast (2).
pub fn registry() -> Vec<OriginNode> {
    let mut nodes = Vec::new();
    for i in 1..=4 {
        nodes.push(node(&format!("fra-{i}"), "eu-central", FRANKFURT));
        nodes.push(node(&format!("iad-{i}"), "us-east", ASHBURN));
    }
    for i in 1..=2 {
        nodes.push(node(&format!("dub-{i}"), "eu-west", DUBLIN));
        nodes.push(node(&format!("sin-{i}"), "ap-southeast", SINGAPORE));
    }
    nodes
}

pub fn ids<'a>(nodes: &[&'a OriginNode]) -> Vec<&'a str> {
    nodes.iter().map(|n| n.id.as_str()).collect()
}
