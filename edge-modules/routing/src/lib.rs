//! Edge routing: which origin node serves a viewer of a stream.
//!
//! Nearest healthy region by great-circle distance (or by the client's
//! country), then rendezvous (highest random weight) hashing of the stream
//! name over that region's nodes, with bounded load, after the stream's
//! placement (the node holding its publisher). See [`rank`] for the exact
//! precedence and [`pick`] for the choice.
//!
//! Pure and deterministic: no clocks, no IO, no randomness, integer
//! hashing and `libm` trigonometry, so a native edge host and a
//! `wasm32-wasip2` component route the same request to the same node.
//!
//! ```
//! use std::time::Duration;
//! use livestack_routing::{ClientGeo, GeoPoint, OriginNode, Policy, RouteReason, pick};
//!
//! let node = |id: &str, region: &str, lat, lon| OriginNode {
//!     id: id.into(),
//!     region: region.into(),
//!     location: GeoPoint::new(lat, lon),
//!     healthy: true,
//!     load: 0.2,
//!     heartbeat_age: Duration::from_secs(1),
//! };
//! let nodes = [
//!     node("fra-1", "eu-central", 50.11, 8.68),
//!     node("fra-2", "eu-central", 50.11, 8.68),
//!     node("iad-1", "us-east", 38.95, -77.45),
//! ];
//! let berlin = ClientGeo { location: Some(GeoPoint::new(52.52, 13.40)), country: None };
//! let route = pick("live/demo", &berlin, &nodes, None, &Policy::default())?;
//! assert_eq!(route.region, "eu-central");
//! assert_eq!(route.reason, RouteReason::Rendezvous);
//! # Ok::<(), livestack_routing::RoutingError>(())
//! ```

mod country;
mod geo;
mod hash;
mod route;

pub use country::DEFAULT_COUNTRY_REGIONS;
pub use geo::{EARTH_MEAN_RADIUS_KM, GeoPoint, haversine_km};
pub use hash::hrw_score;
pub use route::{
    ClientGeo, DEFAULT_LOAD_CAP, DEFAULT_MAX_HEARTBEAT_AGE, OriginNode, Policy, Route, RouteReason,
    RoutingError, pick, rank,
};
