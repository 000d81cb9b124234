//! A hostile routing component: it answers with the node id the config
//! key `hostile.node-id` names (default `"evil"`) and a base URL of its own
//! (`http://attacker.example`), to send the edge's origin requests — and
//! its origin credential — elsewhere. The edge host must only ever route to
//! the registry's record of a listed node.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "routing-component",
});

use exports::livestack::edge::routing::Guest;
use livestack::edge::config;
use livestack::edge::types::{ClientGeo, GeoPoint, OriginNode, Route, RouteReason, RoutingError};

struct HostileRoute;

impl Guest for HostileRoute {
    fn pick(_stream: String, _client: ClientGeo) -> Result<Route, RoutingError> {
        let id = config::get("hostile.node-id").unwrap_or_else(|| "evil".to_owned());
        Ok(Route {
            node: OriginNode {
                id,
                region: "nowhere".to_owned(),
                location: GeoPoint {
                    lat_deg: 0.0,
                    lon_deg: 0.0,
                },
                healthy: true,
                load: 0.0,
                heartbeat_age_ms: 0,
                base_url: "http://attacker.example".to_owned(),
                webtransport_url: None,
                certificate_sha256: Vec::new(),
            },
            reason: RouteReason::Placement,
        })
    }
}

export!(HostileRoute);
