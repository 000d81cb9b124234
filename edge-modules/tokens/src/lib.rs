//! Edge tokens: CTA-5007 Common Access Token (COSE_Mac0) and JWT
//! mint/verify, key rotation, replay and renewal rules.
//!
//! Pure logic, shared by the `livestack token mint/verify` CLI, the edge
//! host and the WASM components (`wasm32-wasip2`): no clock (the caller
//! passes `now`, Unix seconds), no randomness (ECDSA signs per RFC 6979;
//! token ids come from the caller), no I/O.
//!
//! * **CAT** ([`TokenKind::Cat`]): a CWT (RFC 8392) in a COSE_Mac0
//!   (RFC 9052 §6.2) tagged `61(17([...]))`, protected header
//!   `{1: 5 (HMAC 256/256), 4: kid}`, sent as base64url without padding (the
//!   `CTA-Common-Access-Token` header or a query parameter). Claims: the CWT
//!   ones plus CTA-5007 `catu`, `catr`, `catreplay`, `catv`, `crit`.
//! * **JWT** ([`TokenKind::Jwt`]): RFC 7519 compact JWS with ES256
//!   (RFC 7518 §3.4, `r || s`), EdDSA (RFC 8037) or HS256, for WHIP, WHEP
//!   and WebTransport session set-up; claims `iss sub aud exp nbf iat jti`
//!   plus `stream` and `access`.
//!
//! [`verify`] tells the two apart (a JWT has two dots), checks structure,
//! `kid` → key (rotation: any configured key verifies), the MAC or signature
//! (constant time), `exp`/`nbf`/`iat` with a skew, issuer, audience, and the
//! resource: a token for stream A never opens stream B ([`ResourceMismatch::Stream`]).
//! Replay enforcement and renewal are described for the caller to carry out
//! ([`ReplayCheck`], [`renewal`]).
//!
//! Every server that takes a token finds it with [`request_token`] (the
//! `token` query parameter, RFC 3986 percent-decoded, or the
//! `CTA-Common-Access-Token` header) and answers a refusal with
//! [`TokenError::status`] (RFC 6750 §3.1: 401 for a bad, expired or
//! replayed token, 403 for a good one that does not cover the request), so
//! a token passes or fails on each of them alike.
//!
//! ```
//! use livestack_tokens::*;
//! let keys = KeySet::parse("k1:HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY")?;
//! let now = 1_750_000_000;
//! let token = mint_cat(&MintRequest::for_stream("cam1", Access::Play, now, 300, *b"t-1")?, &keys)?;
//!
//! let mut opts = VerifyOptions::new(now + 10);
//! opts.url = Some(RequestUrl::parse("https://edge.example/live/cam1/index.m3u8")?);
//! assert_eq!(verify(&token, &keys, &opts)?.claims.stream.as_deref(), Some("cam1"));
//!
//! opts.url = Some(RequestUrl::parse("https://edge.example/live/cam2/index.m3u8")?);
//! assert!(matches!(
//!     verify(&token, &keys, &opts),
//!     Err(TokenError::WrongResource(ResourceMismatch::Stream { .. }))
//! ));
//! # Ok::<_, TokenError>(())
//! ```

mod cat;
mod cbor;
mod claims;
mod error;
mod extract;
mod jwt;
pub mod keys;
mod renewal;
mod replay;
mod status;
mod uri;
mod verify;

pub use cat::{COSE_ALG_HMAC_256_256, COSE_MAC0_TAG, CWT_TAG, claim_key};
pub use cbor::MAX_DEPTH as MAX_CBOR_DEPTH;
pub use claims::{
    Access, CLAIM_ACCESS, CLAIM_STREAM, Catr, Claims, DEFAULT_RENEWAL_DEADLINE, RenewalKind,
    ReplayPolicy,
};
pub use error::{ResourceMismatch, TokenError};
pub use extract::{
    EDGE_CREDENTIAL_HEADER, MIN_EDGE_CREDENTIAL_LEN, TOKEN_HEADER, TOKEN_PARAM,
    decode_query_component, edge_credential_matches, encode_query_component, query_param,
    request_token, token_query,
};
pub use keys::{Alg, Key, KeyInfo, KeySet, KeyStore};
pub use renewal::{Renewal, renewal};
pub use replay::{REPLAY_KEY_PREFIX, ReplayCheck, ReplayOutcome};
pub use status::{BearerError, TokenErrorKind};
pub use uri::{
    Catu, MAX_STREAM_NAME_LEN, MAX_URL_LEN, RequestUrl, STREAM_PATH_PREFIX, UriComponent, UriMatch,
    is_valid_stream_name, stream_path_prefix,
};
pub use verify::{
    DEFAULT_SKEW_SECS, MAX_SKEW_SECS, MAX_TOKEN_ID_LEN, MAX_TOKEN_LEN, MintRequest, TokenKind,
    Verified, VerifyOptions,
};

/// Mint a CAT (HS256 COSE_Mac0, base64url without padding) signed by
/// `req.kid`, else the HS256 signing key of `keys` (a [`KeySet`] or any
/// other [`KeyStore`]).
pub fn mint_cat<K: KeyStore + ?Sized>(req: &MintRequest, keys: &K) -> Result<String, TokenError> {
    cat::mint(req, keys)
}

/// Mint a JWT (compact JWS) signed by `req.kid`, else the signing key of
/// `req.alg`. The CAT-only claims (`catu`, `catr`, `catreplay`, `catv`) must
/// be absent ([`MintRequest::without_cat_claims`]).
pub fn mint_jwt<K: KeyStore + ?Sized>(req: &MintRequest, keys: &K) -> Result<String, TokenError> {
    jwt::mint(req, keys)
}

/// The `kid` a CAT or JWT names, read **without verifying anything**: only
/// for choosing or fetching the key before [`verify`]. Same bounds as
/// [`verify`].
pub fn peek_kid(token: &str) -> Result<(TokenKind, String), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("token longer than 8192 bytes"));
    }
    match TokenKind::detect(token) {
        Some(TokenKind::Cat) if !token.is_empty() => Ok((TokenKind::Cat, cat::peek_kid(token)?)),
        Some(TokenKind::Jwt) => Ok((TokenKind::Jwt, jwt::peek_kid(token)?)),
        _ => Err(TokenError::Malformed("neither a CAT nor a JWT")),
    }
}

/// Verify a CAT or a JWT (detected by [`TokenKind::detect`]) against `keys`
/// (a [`KeySet`] or any other [`KeyStore`]) and `opts`. Work is bounded: at
/// most [`MAX_TOKEN_LEN`] bytes of text, CBOR nesting at most
/// [`MAX_CBOR_DEPTH`]; no input makes it panic.
pub fn verify<K: KeyStore + ?Sized>(
    token: &str,
    keys: &K,
    opts: &VerifyOptions,
) -> Result<Verified, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("token longer than 8192 bytes"));
    }
    if token.is_empty() {
        return Err(TokenError::Malformed("empty token"));
    }
    if opts.skew > MAX_SKEW_SECS {
        return Err(TokenError::InvalidOptions("skew above 300 s"));
    }
    match TokenKind::detect(token) {
        Some(TokenKind::Cat) => cat::verify(token, keys, opts),
        Some(TokenKind::Jwt) => jwt::verify(token, keys, opts),
        None => Err(TokenError::Malformed("neither a CAT nor a JWT")),
    }
}
