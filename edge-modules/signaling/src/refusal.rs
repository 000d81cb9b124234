//! Why a session set-up was refused, and the one place that turns a refusal
//! into an HTTP answer (status, challenge, `Retry-After`, reason header).

use livestack_routing::RoutingError;
use livestack_tokens::TokenError;

use crate::http::{REALM, REASON_HEADER, Response};

/// Seconds a WHEP viewer (or MoQ subscriber) is told to wait before asking
/// again for a stream that is not live yet (`Retry-After`, RFC 9110
/// §10.2.3). Short: a publisher usually connects within seconds.
pub const NOT_LIVE_RETRY_AFTER_S: u32 = 2;

/// Seconds a client is told to wait when no node can take the session
/// (`Retry-After` on 503, RFC 9110 §15.6.4): long enough for a registry
/// heartbeat to bring a node back or for load to drain.
pub const UNAVAILABLE_RETRY_AFTER_S: u32 = 5;

/// Why a signaling request was refused. [`Refusal::response`] maps each
/// variant to its status; every answer carries [`REASON_HEADER`] with
/// [`Refusal::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No signaling endpoint at this path → 404 (RFC 9110 §15.5.5).
    #[error("no signaling endpoint at this path")]
    NotFound,
    /// The stream name in the path is not a valid stream name
    /// ([`livestack_tokens::is_valid_stream_name`]: 1 to 128 bytes of
    /// `A-Z a-z 0-9 . _ ~ -`) → 400 (RFC 9110 §15.5.1).
    #[error("invalid stream name")]
    InvalidName,
    /// The endpoint does not take this method → 405 with `Allow` (RFC 9110
    /// §15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods the endpoint takes, for the `Allow` header.
        allow: &'static str,
    },
    /// A WebTransport set-up with an `access` query parameter other than
    /// `play` or `publish` → 400.
    #[error("access must be play or publish")]
    InvalidAccess,
    /// A WHIP/WHEP offer without `Content-Type: application/sdp` (RFC 9725
    /// §4.2) → 415 with `Accept-Post: application/sdp` (RFC 9110 §15.5.16).
    #[error("the offer must be application/sdp")]
    UnsupportedMediaType,
    /// A WHIP/WHEP request with an empty body: there is no offer to forward
    /// → 400.
    #[error("empty SDP offer")]
    EmptyOffer,
    /// The offer is larger than [`MAX_OFFER_BYTES`](crate::MAX_OFFER_BYTES)
    /// → 413 (RFC 9110 §15.5.14).
    #[error("SDP offer too large")]
    OfferTooLarge,
    /// No bearer token was presented → 401 with a bare `Bearer` challenge
    /// (RFC 6750 §3: no error code when the request has no credentials).
    #[error("no bearer token")]
    MissingToken,
    /// The token was refused → [`TokenError::status`], the mapping the
    /// `/live/` edge shares: a token that is valid but for another stream
    /// or access ([`TokenError::WrongResource`]) → 403 with
    /// `error="insufficient_scope"`; every other cause (malformed, tampered,
    /// expired, replayed, unknown key, wrong issuer) → 401 with
    /// `error="invalid_token"` (RFC 6750 §3.1).
    #[error("invalid token: {0}")]
    InvalidToken(TokenError),
    /// WHEP (or MoQ subscribe) for a stream that has no placement yet, i.e.
    /// nobody publishes it → 409 Conflict (RFC 9110 §15.5.10) with
    /// `Retry-After:` [`NOT_LIVE_RETRY_AFTER_S`].
    #[error("stream is not live")]
    NotLive,
    /// No healthy node, or every healthy node is at its load cap → 503
    /// (RFC 9110 §15.6.4) with `Retry-After:` [`UNAVAILABLE_RETRY_AFTER_S`]
    /// (RFC 9725, section "Load Balancing and Redirections").
    #[error("no node available: {0}")]
    NoRoute(RoutingError),
    /// The stream is placed, but neither its node nor another node of its
    /// region can take the viewer (dead or full): the viewer cannot reach
    /// the stream for now → 503 with `Retry-After`.
    #[error("the node holding the stream is unavailable")]
    PlacementUnavailable,
    /// Routing chose a node that has no [`NodeEndpoint`](crate::NodeEndpoint)
    /// (an inconsistent registry view) → 503 with `Retry-After`.
    #[error("the chosen node has no endpoint")]
    NoEndpoint,
    /// The session token could not be minted (no signing key configured):
    /// an operator error → 500 (RFC 9110 §15.6.1).
    #[error("cannot mint a session token: {0}")]
    MintFailed(TokenError),
}

impl Refusal {
    /// The status code this refusal is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::InvalidName | Self::InvalidAccess | Self::EmptyOffer => 400,
            Self::MethodNotAllowed { .. } => 405,
            Self::UnsupportedMediaType => 415,
            Self::OfferTooLarge => 413,
            Self::InvalidToken(e) => e.status(),
            Self::MissingToken => 401,
            Self::NotLive => 409,
            Self::NoRoute(_) | Self::PlacementUnavailable | Self::NoEndpoint => 503,
            Self::MintFailed(_) => 500,
        }
    }

    /// A short kebab-case code for [`REASON_HEADER`]: stable, safe to log,
    /// never containing token bytes.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::InvalidName => "invalid-name",
            Self::InvalidAccess => "invalid-access",
            Self::MethodNotAllowed { .. } => "method-not-allowed",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::EmptyOffer => "empty-offer",
            Self::OfferTooLarge => "offer-too-large",
            Self::MissingToken => "missing-token",
            Self::InvalidToken(e) => e.reason(),
            Self::NotLive => "not-live",
            Self::NoRoute(RoutingError::NoCapacity) => "no-capacity",
            Self::NoRoute(_) => "no-healthy-node",
            Self::PlacementUnavailable => "placement-unavailable",
            Self::NoEndpoint => "no-endpoint",
            Self::MintFailed(_) => "mint-failed",
        }
    }

    /// The full HTTP answer.
    pub fn response(&self) -> Response {
        let mut response = Response::new(self.status()).with(REASON_HEADER, self.reason());
        match self {
            Self::MethodNotAllowed { allow } => response = response.with("allow", *allow),
            Self::UnsupportedMediaType => {
                response = response.with("accept-post", "application/sdp");
            }
            Self::MissingToken => {
                response = response.with("www-authenticate", format!("Bearer realm=\"{REALM}\""));
            }
            Self::InvalidToken(e) => {
                if let Some(challenge) = e.bearer_error().challenge(REALM, &e.to_string()) {
                    response = response.with("www-authenticate", challenge);
                }
            }
            Self::NotLive => {
                response = response.with("retry-after", NOT_LIVE_RETRY_AFTER_S.to_string());
            }
            Self::NoRoute(_) | Self::PlacementUnavailable | Self::NoEndpoint => {
                response = response.with("retry-after", UNAVAILABLE_RETRY_AFTER_S.to_string());
            }
            _ => {}
        }
        response.text(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_carries_a_reason_and_cors() {
        let all = [
            Refusal::NotFound,
            Refusal::InvalidName,
            Refusal::InvalidAccess,
            Refusal::MethodNotAllowed { allow: "POST" },
            Refusal::UnsupportedMediaType,
            Refusal::EmptyOffer,
            Refusal::OfferTooLarge,
            Refusal::MissingToken,
            Refusal::InvalidToken(TokenError::Expired),
            Refusal::NotLive,
            Refusal::NoRoute(RoutingError::NoHealthyNode),
            Refusal::NoRoute(RoutingError::NoCapacity),
            Refusal::PlacementUnavailable,
            Refusal::NoEndpoint,
            Refusal::MintFailed(TokenError::KeyError("no signing key".into())),
        ];
        for r in all {
            let resp = r.response();
            assert_eq!(resp.status, r.status());
            assert_eq!(resp.header(REASON_HEADER), Some(r.reason()));
            assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
            assert!(!resp.body.is_empty());
        }
    }
}
