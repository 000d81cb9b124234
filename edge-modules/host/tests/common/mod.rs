//! Shared fixtures of the edge host tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use livestack_edge::{
    ComponentLimits, Components, GeoPoint, HostImports, Keys, OriginNode, StaticRegistry,
};

/// HS256 secret "0123456789abcdef0123456789abcdef", base64url.
pub const HS256_KEYS: &str = "k1:HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

/// The same keys as a native `KeySet`.
pub fn native_keys() -> livestack_tokens::KeySet {
    livestack_tokens::KeySet::parse(HS256_KEYS).expect("test keys parse")
}

pub fn node(id: &str, region: &str, lat: f64, lon: f64) -> OriginNode {
    OriginNode {
        id: id.to_owned(),
        region: region.to_owned(),
        location: GeoPoint {
            lat_deg: lat,
            lon_deg: lon,
        },
        healthy: true,
        load: 0.1,
        heartbeat_age_ms: 1_000,
        base_url: format!("https://{id}.{region}.example:8443"),
        webtransport_url: None,
        certificate_sha256: Vec::new(),
    }
}

pub fn registry() -> StaticRegistry {
    StaticRegistry {
        nodes: vec![
            node("eu1", "eu-west", 53.3, -6.3),
            node("eu2", "eu-west", 53.3, -6.3),
            node("us1", "us-east", 39.0, -77.5),
        ],
        placements: HashMap::from([("cam-placed".to_owned(), "us1".to_owned())]),
    }
}

pub fn imports() -> HostImports {
    HostImports {
        config: HashMap::new(),
        keys: Keys::parse(HS256_KEYS).expect("test keys parse"),
        registry: Arc::new(registry()),
    }
}

/// One `Components` per test binary (compiling four components in a debug
/// host takes a while).
pub fn shared() -> &'static Components {
    static SHARED: OnceLock<Components> = OnceLock::new();
    SHARED.get_or_init(|| {
        Components::load(None, ComponentLimits::default(), imports()).expect("components load")
    })
}

/// A fresh, empty temporary directory for modules.
pub fn modules_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("livestack-edge-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create modules dir");
    dir
}

pub const HOSTILE_LOOP: &str = env!("LIVESTACK_COMPONENT_HOSTILE_LOOP");
pub const HOSTILE_ALLOC: &str = env!("LIVESTACK_COMPONENT_HOSTILE_ALLOC");
pub const HOSTILE_KEYS: &str = env!("LIVESTACK_COMPONENT_HOSTILE_KEYS");
pub const HOSTILE_ROUTE: &str = env!("LIVESTACK_COMPONENT_HOSTILE_ROUTE");
pub const HOSTILE_KV: &str = env!("LIVESTACK_COMPONENT_HOSTILE_KV");
pub const MANIFEST: &str = env!("LIVESTACK_COMPONENT_MANIFEST");
pub const ROUTING: &str = env!("LIVESTACK_COMPONENT_ROUTING");
