//! The edge PoP server (`livestack edge`): the native HTTP front that runs
//! the edge components ([`livestack_edge::Components`]) in front of an
//! origin, with an LL-HLS-aware cache ([`livestack_edge_cache`]).
//!
//! Per viewer request for `/live/NAME/...`:
//! 1. the token (query parameter `token`, or the `CTA-Common-Access-Token`
//!    header of CTA-5007, found by [`livestack_tokens::request_token`] as
//!    the gateway component finds it) is verified by the tokens component
//!    for this URL — a token for stream A never opens stream B; a refusal
//!    gets the status of [`livestack_tokens::TokenErrorKind::status`] (401
//!    missing, bad, expired or replayed, 403 another stream, as the gateway
//!    answers) with an `X-Livestack-Reason` header, never a stack trace;
//! 2. the response comes from the cache, keyed on the upstream node, the
//!    path and the LL-HLS delivery directives only (the token never
//!    fragments the cache), with concurrent identical requests coalesced
//!    into one origin request. The upstream is the origin node the routing
//!    component picks for `NAME` and the client's location ([`GeoHeaders`])
//!    from the origin registry ([`ControlRegistry`], a snapshot of the
//!    control plane refreshed in the background; placement first), with
//!    fallback to the next-ranked node when one is unreachable; with no
//!    registry (or an empty one) it is the configured origin;
//! 3. playlists are rewritten by the manifest component so that every URI
//!    carries the viewer's token (or its CAT renewal).
//!
//! WHIP (RFC 9725), WHEP and WebTransport set-up requests (`/whip/..`,
//! `/whep/..`, `/wt/..`) are answered by the signaling component with a
//! redirect to the chosen origin node; media never flows through here.
//! A component failure (trap, deadline, memory limit) fails that request
//! with 5xx only.

mod geo;
mod metrics;
mod registry;
mod server;
mod upstream;

pub use geo::GeoHeaders;
pub use metrics::EdgeMetrics;
pub use registry::{
    ControlRegistry, DEFAULT_MAX_HEARTBEAT_AGE, DEFAULT_REGISTRY_REFRESH, RefreshError,
    RegistryOptions,
};
pub use server::{Edge, EdgeConfig, EdgeError};
pub use upstream::{HOLD_DOWN, MAX_ATTEMPTS, ORIGIN_NODE_HEADER};

/// The origin base URL type of [`EdgeConfig::origin`].
pub type OriginUri = http::Uri;
