//! What the caller knows and [`handle`](crate::handle) needs: keys, the
//! registry view, the client's location, the time and a session id.

use std::fmt;

use livestack_routing::{ClientGeo, OriginNode, Policy};
use livestack_tokens::{Alg, KeyStore, TokenKind};

use crate::SESSION_TOKEN_TTL_S;

/// How session tokens are minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Lifetime of a session token, seconds. Default
    /// [`SESSION_TOKEN_TTL_S`].
    pub ttl_s: u64,
    /// Token format. Default JWT: the nodes (str0m WHIP/WHEP, MoQ) read it
    /// from the query, and a JWT carries the `aud` node binding plainly.
    pub kind: TokenKind,
    /// Signing algorithm; the key set's first signing key of it mints.
    /// Default HS256 (CAT supports only HMAC).
    pub alg: Alg,
    /// `iss` of minted tokens, if any.
    pub issuer: Option<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl_s: SESSION_TOKEN_TTL_S,
            kind: TokenKind::Jwt,
            alg: Alg::Hs256,
            issuer: None,
        }
    }
}

/// Where clients reach a node: the registry's routing view
/// ([`OriginNode`]) says which node, this says at which URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// The node's id ([`OriginNode::id`]).
    pub node_id: String,
    /// Base URL for WHIP/WHEP, no trailing `/`, e.g.
    /// `https://o1.example:8443`.
    pub base_url: String,
    /// The WebTransport (Media over QUIC) URL, e.g.
    /// `https://o1.example:4443/moq`; `None` means `<base_url>/moq`.
    pub webtransport_url: Option<String>,
    /// SHA-256 hashes of the node's self-signed certificates (32 bytes
    /// each), for the browser's `serverCertificateHashes` (W3C WebTransport
    /// §6.4: ECDSA, validity at most 14 days). Empty for a node with a
    /// publicly trusted certificate.
    pub certificate_sha256: Vec<[u8; 32]>,
}

/// Everything [`handle`](crate::handle) decides with. Borrowed: building
/// one costs nothing.
pub struct Context<'a> {
    /// Verification keys and the session-token signing key: a
    /// `livestack_tokens::KeySet`, or the host's keys by handle in the
    /// edge component (`livestack:edge/keys`).
    pub keys: &'a dyn KeyStore,
    /// Required `iss` of presented tokens, if any.
    pub issuer: Option<&'a str>,
    /// This edge's audience: presented tokens that carry an `aud` must name
    /// it (RFC 7519 §4.1.3). `None` refuses tokens that carry one.
    pub audience: Option<&'a str>,
    /// Allowed clock skew for `exp`/`nbf`/`iat`, seconds.
    pub skew_s: u64,
    /// The registry view: every known node, healthy or not.
    pub nodes: &'a [OriginNode],
    /// The URLs of the nodes. A node chosen by routing without an entry
    /// here cannot be redirected to ([`Refusal::NoEndpoint`]).
    ///
    /// [`Refusal::NoEndpoint`]: crate::Refusal::NoEndpoint
    pub endpoints: &'a [NodeEndpoint],
    /// The id of the node holding a stream (by name), `None` if the stream
    /// is not placed (nobody publishes it).
    pub placement: &'a dyn Fn(&str) -> Option<String>,
    /// Where the client is.
    pub geo: &'a ClientGeo<'a>,
    /// Routing policy (load cap, heartbeat age, country table).
    pub policy: &'a Policy<'a>,
    /// Current time, Unix seconds.
    pub now_unix_s: u64,
    /// A fresh random id for this session (at least 16 random bytes,
    /// encoded; at most 128 bytes): the minted token's `jti`/`cti`.
    pub session_id: &'a str,
    /// How session tokens are minted.
    pub session: &'a SessionConfig,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and the session id stay out of logs.
        f.debug_struct("Context")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("nodes", &self.nodes.len())
            .field("now_unix_s", &self.now_unix_s)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}
