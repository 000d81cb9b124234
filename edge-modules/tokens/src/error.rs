//! The one error type of this crate.

use crate::keys::Alg;

/// Why a token (or a key, or a request URL) was refused.
///
/// Messages never contain token bytes or key material: they are safe to log.
/// [`TokenError::status`] is the one HTTP mapping (401 for a bad token, 403
/// for [`WrongResource`](Self::WrongResource), 400 for
/// [`InvalidUrl`](Self::InvalidUrl), 500 for key and option errors; why is
/// on [`BearerError`](crate::BearerError)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token text, its base64url, CBOR or JSON structure, or a claim's
    /// type is wrong; or a required claim (`exp`) is missing.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// No key with this `kid` is configured (or the token names none).
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    /// The key named by `kid` is for another algorithm than the token's
    /// header says (algorithm confusion, e.g. `HS256` with an ES256 key).
    #[error("token algorithm {found} does not match key {kid:?} ({expected})")]
    AlgMismatch {
        /// The key id the token named.
        kid: String,
        /// The algorithm the configured key is for.
        expected: Alg,
        /// The algorithm the token's header claims.
        found: Alg,
    },
    /// The MAC or signature does not verify with the named key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` (plus the allowed clock skew) is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` (minus the allowed clock skew) is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` differs from the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience (or the token names an
    /// audience while none is configured, RFC 7519 §4.1.3).
    #[error("wrong audience")]
    WrongAudience,
    /// The token is valid but not for this resource: its `catu` does not
    /// match the request URL, or its stream or access differs.
    #[error("token not valid for this resource: {0}")]
    WrongResource(ResourceMismatch),
    /// The token was already used and its replay policy forbids reuse
    /// (returned by [`ReplayCheck::outcome`](crate::ReplayCheck::outcome)).
    #[error("token replayed")]
    Replayed,
    /// The token carries a claim this verifier does not enforce and must not
    /// ignore: a restricting CAT claim (`catnip`, `catm`, `cath`, ...), a key
    /// listed in `crit`, or an unknown `catu` component or match type.
    #[error("unsupported claim: {0}")]
    UnsupportedClaim(String),
    /// A feature this crate refuses: `alg: none`, another COSE algorithm,
    /// `catu` regular expressions, a `catv` other than 1, COSE `crit`...
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A key or key configuration is invalid (wrong length, not a curve
    /// point, duplicate `kid`), or no key can sign with the requested
    /// algorithm.
    #[error("key error: {0}")]
    KeyError(String),
    /// A request URL given to [`RequestUrl::parse`](crate::RequestUrl::parse)
    /// is not an absolute `scheme://host/path` URL, or its path is unsafe to
    /// match by prefix (dot segments, encoded `/` or `.`, backslashes).
    #[error("invalid request URL: {0}")]
    InvalidUrl(&'static str),
    /// The caller's [`VerifyOptions`](crate::VerifyOptions) or
    /// [`MintRequest`](crate::MintRequest) are inconsistent (skew above the
    /// maximum, `exp` not after `iat`, a claim the token kind cannot carry).
    #[error("invalid options: {0}")]
    InvalidOptions(&'static str),
}

/// Which part of a resource check failed, for
/// [`TokenError::WrongResource`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceMismatch {
    /// The token's stream claim names another stream than the request
    /// (the URL's `/live/NAME/` or [`VerifyOptions::stream`](crate::VerifyOptions::stream)).
    #[error("token is for stream {token:?}, request is for stream {request:?}")]
    Stream {
        /// The stream named in the token.
        token: String,
        /// The stream the request is for.
        request: String,
    },
    /// A `catu` component (CTA-5007) does not match the request URL.
    #[error("catu {0} does not match")]
    Uri(crate::UriComponent),
    /// The token's `access` differs from the requested one (or is absent).
    #[error("access {token:?} does not allow {request:?}")]
    Access {
        /// The access the token grants, if any.
        token: Option<crate::Access>,
        /// The access the request needs.
        request: crate::Access,
    },
    /// The request is for a stream but the token carries neither a stream
    /// claim nor a `catu`: unscoped tokens never open a stream (an operator
    /// who wants an all-streams token says so with a `catu` path prefix
    /// `/live/`).
    #[error("token is not scoped to a stream")]
    Unscoped,
}
