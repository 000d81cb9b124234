//! The signaling edge component: `livestack:edge/signaling` over
//! `livestack-signaling` (WHIP RFC 9725, WHEP, WebTransport set-up).
//!
//! The driver part: gathers the host's keys (by handle, `livestack:edge/keys`:
//! the host verifies the presented token's signature and signs the session
//! token; the key bytes never enter this module), the registry view, the
//! policy and a random session id, then lets the pure crate decide.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "signaling-component",
});

use std::time::Duration;

#[path = "../../host-keys.rs"]
mod host_keys;

use exports::livestack::edge::signaling::Guest;
use livestack::edge::types::{OriginNode, SignalingRequest, SignalingResponse};
use livestack::edge::{config, registry};
use livestack_routing as routing;
use livestack_signaling as pure;
use livestack_tokens as tokens;

struct Signaling;

impl Guest for Signaling {
    fn handle(request: SignalingRequest) -> SignalingResponse {
        match handle(request) {
            Ok(response) => response,
            Err(problem) => SignalingResponse {
                status: 500,
                headers: vec![
                    ("content-type".into(), "text/plain; charset=utf-8".into()),
                    ("cache-control".into(), "no-store".into()),
                    (pure::REASON_HEADER.into(), "edge-config".into()),
                ],
                body: format!("edge configuration error: {problem}\n").into_bytes(),
            },
        }
    }
}

fn handle(request: SignalingRequest) -> Result<SignalingResponse, String> {
    let req = pure::Request {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body_len: request.body.len() as u64,
    };
    let session = session_config()?;
    let skew_s = match config::get("tokens.skew-s") {
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| "tokens.skew-s is not a number".to_owned())?,
        None => tokens::DEFAULT_SKEW_SECS,
    };
    let issuer = config::get("tokens.issuer");
    let audience = config::get("tokens.audience");
    let policy = policy()?;

    let nodes = registry::nodes();
    let routing_nodes: Vec<routing::OriginNode> = nodes.iter().map(node_from_wit).collect();
    let endpoints: Vec<pure::NodeEndpoint> = nodes.into_iter().map(endpoint_from_wit).collect();
    let geo = routing::ClientGeo {
        location: request
            .client
            .location
            .map(|p| routing::GeoPoint::new(p.lat_deg, p.lon_deg)),
        country: request.client.country.as_deref(),
    };
    let placement = |stream: &str| registry::placement(stream);
    let session_id = session_id()?;
    let ctx = pure::Context {
        keys: &host_keys::HostKeys,
        issuer: issuer.as_deref(),
        audience: audience.as_deref(),
        skew_s,
        nodes: &routing_nodes,
        endpoints: &endpoints,
        placement: &placement,
        geo: &geo,
        policy: &policy,
        now_unix_s: request.now_unix_s,
        session_id: &session_id,
        session: &session,
    };
    let answer = pure::handle(&req, &ctx);
    Ok(SignalingResponse {
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
    })
}

/// The session-token settings from the `signaling.*` and `tokens.*` keys.
fn session_config() -> Result<pure::SessionConfig, String> {
    let mut session = pure::SessionConfig {
        issuer: config::get("tokens.issuer"),
        ..pure::SessionConfig::default()
    };
    if let Some(ttl) = config::get("signaling.session-ttl-s") {
        session.ttl_s = ttl
            .trim()
            .parse()
            .map_err(|_| "signaling.session-ttl-s is not a number".to_owned())?;
    }
    if let Some(format) = config::get("signaling.session-format") {
        session.kind = match format.trim() {
            "jwt" => tokens::TokenKind::Jwt,
            "cat" => tokens::TokenKind::Cat,
            _ => return Err("signaling.session-format is neither jwt nor cat".to_owned()),
        };
    }
    if let Some(alg) = config::get("signaling.session-alg") {
        session.alg = tokens::Alg::from_jose_name(alg.trim())
            .ok_or_else(|| "signaling.session-alg is not HS256, ES256 or EdDSA".to_owned())?;
    }
    Ok(session)
}

/// The routing policy from the `routing.*` config keys.
fn policy() -> Result<routing::Policy<'static>, String> {
    routing::Policy::from_config(config::get)
}

fn node_from_wit(n: &OriginNode) -> routing::OriginNode {
    routing::OriginNode {
        id: n.id.clone(),
        region: n.region.clone(),
        location: routing::GeoPoint::new(n.location.lat_deg, n.location.lon_deg),
        healthy: n.healthy,
        load: n.load,
        heartbeat_age: Duration::from_millis(n.heartbeat_age_ms),
    }
}

fn endpoint_from_wit(n: OriginNode) -> pure::NodeEndpoint {
    pure::NodeEndpoint {
        node_id: n.id,
        base_url: n.base_url,
        webtransport_url: n.webtransport_url,
        // A hash of another length cannot be a SHA-256: left out.
        certificate_sha256: n
            .certificate_sha256
            .iter()
            .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .collect(),
    }
}

/// 16 random bytes from WASI `random`, hex: the session token's id.
fn session_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| "no randomness for a session id".to_owned())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

export!(Signaling);
