//! The registry view signaling routes with, from `LIVESTACK_NODES` (JSON).
//!
//! ```json
//! {
//!   "nodes": [
//!     {
//!       "id": "o1", "region": "eu-west", "baseUrl": "https://o1.example:8443",
//!       "latitude": 53.3, "longitude": -6.3,
//!       "healthy": true, "load": 0.12, "heartbeatAgeMs": 1200,
//!       "webtransportUrl": "https://o1.example:4443/moq",
//!       "certificateSha256": ["<base64 of 32 bytes>"]
//!     }
//!   ],
//!   "placements": { "cam1": "o1" }
//! }
//! ```
//!
//! `latitude`/`longitude` are the node's region location in WGS 84
//! degrees (default 0.0); `healthy` defaults to true; `load` is the
//! fraction of capacity in use, 0.0..=1.0 (default 0.0); `heartbeatAgeMs`
//! the age of the node's last heartbeat in milliseconds (default 0);
//! `webtransportUrl` defaults to `<baseUrl>/moq`;
//! `placements` maps a stream name to the id of the node that holds it. A
//! snapshot: whoever starts the component refreshes it (the livestack edge
//! host from the control plane).

use std::collections::BTreeMap;

use std::time::Duration;

use livestack_routing::{GeoPoint, OriginNode};
use livestack_signaling::NodeEndpoint;
use serde::Deserialize;

/// Why `LIVESTACK_NODES` does not parse.
#[derive(Debug)]
pub struct RegistryError(String);

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parsed registry view.
#[derive(Debug, Default)]
pub struct Registry {
    /// Every node, healthy or not (the routing view).
    pub nodes: Vec<OriginNode>,
    /// The nodes' URLs.
    pub endpoints: Vec<NodeEndpoint>,
    /// Stream name → node id.
    pub placements: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    nodes: Vec<Node>,
    #[serde(default)]
    placements: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Node {
    id: String,
    region: String,
    base_url: String,
    #[serde(default)]
    latitude: f64,
    #[serde(default)]
    longitude: f64,
    #[serde(default = "yes")]
    healthy: bool,
    #[serde(default)]
    load: f64,
    #[serde(default)]
    heartbeat_age_ms: u64,
    #[serde(default)]
    webtransport_url: Option<String>,
    #[serde(default)]
    certificate_sha256: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Registry {
    /// Parses the JSON document described in the module docs.
    ///
    /// # Errors
    ///
    /// [`RegistryError`] with the JSON error or the bad field.
    pub fn parse(json: &str) -> Result<Self, RegistryError> {
        let doc: Doc = serde_json::from_str(json).map_err(|e| RegistryError(e.to_string()))?;
        let mut registry = Registry {
            placements: doc.placements,
            ..Registry::default()
        };
        for node in doc.nodes {
            let mut hashes = Vec::new();
            for text in &node.certificate_sha256 {
                hashes.push(decode_sha256(text).ok_or_else(|| {
                    RegistryError(format!(
                        "node {}: certificateSha256 must be base64 of 32 bytes",
                        node.id
                    ))
                })?);
            }
            registry.endpoints.push(NodeEndpoint {
                node_id: node.id.clone(),
                base_url: node.base_url.trim_end_matches('/').to_owned(),
                webtransport_url: node.webtransport_url,
                certificate_sha256: hashes,
            });
            registry.nodes.push(OriginNode {
                id: node.id,
                region: node.region,
                location: GeoPoint::new(node.latitude, node.longitude),
                healthy: node.healthy,
                load: node.load,
                heartbeat_age: Duration::from_millis(node.heartbeat_age_ms),
            });
        }
        Ok(registry)
    }

    /// The node holding `stream`, if placed.
    pub fn placement(&self, stream: &str) -> Option<String> {
        self.placements.get(stream).cloned()
    }
}

/// Standard base64 (RFC 4648 §4, the alphabet with `+` and `/`; padding
/// optional) of exactly 32 bytes.
fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    use base64::{
        Engine as _, alphabet,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };
    const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    STANDARD_ANY_PADDING.decode(text).ok()?.try_into().ok()
}
