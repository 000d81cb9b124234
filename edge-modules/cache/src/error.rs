//! Why a [`get`](crate::OriginCache::get) produced no response.

use std::{error::Error as StdError, sync::Arc, time::Duration};

/// A shareable error source: one failed origin fetch is handed to every
/// request coalesced onto it, so the error is `Clone`.
pub type Source = Arc<dyn StdError + Send + Sync>;

/// Why the cache could not produce a response.
///
/// An origin *status* is not an error: a 404, a 503 (blocking reload timed
/// out at the origin) or a 400 (directive too far ahead) is a response,
/// returned as [`CachedResponse`](crate::CachedResponse) for the edge to pass
/// on. These variants are the cases where there is no origin response at
/// all; every request coalesced onto the failed fetch gets the same error.
/// An edge maps them to `504 Gateway Timeout` ([`Timeout`](Self::Timeout))
/// or `502 Bad Gateway` (the rest).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The origin did not deliver the complete response (headers and body)
    /// within [`CacheConfig::request_timeout`](crate::CacheConfig::request_timeout).
    #[error("the origin did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection to the origin could be established: refused,
    /// unreachable, DNS failure, or not accepted within
    /// [`CacheConfig::connect_timeout`](crate::CacheConfig::connect_timeout).
    #[error("cannot connect to the origin")]
    Connect(#[source] Source),
    /// The connection failed after it was established: reset, closed early,
    /// or the origin spoke invalid HTTP.
    #[error("the origin request failed")]
    Transport(#[source] Source),
    /// The origin's body was larger than the limit (the cache's byte budget):
    /// buffering it would break the memory bound.
    #[error("the origin response exceeds {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The key is not an origin-relative path and query (`/live/...`), or
    /// does not form a valid URI with the configured origin. (The key is
    /// not included: a caller that forgot to strip the token would log it.)
    #[error("invalid cache key: expected an origin-relative path and query")]
    InvalidKey,
    /// The fetch task ended without an answer (the runtime is shutting
    /// down).
    #[error("the origin fetch was abandoned")]
    Abandoned,
    /// A new origin fetch would exceed
    /// [`CacheConfig::max_in_flight`](crate::CacheConfig::max_in_flight) or
    /// [`CacheConfig::max_in_flight_per_origin`](crate::CacheConfig::max_in_flight_per_origin):
    /// answer 503 with `Retry-After` rather than hold more.
    #[error("too many origin fetches in flight")]
    Busy,
}
