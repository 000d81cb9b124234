//! The one mapping from a token refusal to an HTTP answer (status, RFC 6750
//! error code, reason code), used by the native edge, the gateway
//! component and WHIP/WHEP/WebTransport signaling alike.
//!
//! Why each refusal gets its status is on [`BearerError`].

use crate::TokenError;

/// The kind of a [`TokenError`], without its details: the key of the HTTP
/// mapping. The edge host's WIT `token-error` maps to it name for name, so
/// the native edge and the gateway answer from this one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// [`TokenError::Malformed`].
    Malformed,
    /// [`TokenError::UnknownKey`].
    UnknownKey,
    /// [`TokenError::AlgMismatch`].
    AlgMismatch,
    /// [`TokenError::BadSignature`].
    BadSignature,
    /// [`TokenError::Expired`].
    Expired,
    /// [`TokenError::NotYetValid`].
    NotYetValid,
    /// [`TokenError::WrongIssuer`].
    WrongIssuer,
    /// [`TokenError::WrongAudience`].
    WrongAudience,
    /// [`TokenError::WrongResource`].
    WrongResource,
    /// [`TokenError::Replayed`].
    Replayed,
    /// [`TokenError::UnsupportedClaim`].
    UnsupportedClaim,
    /// [`TokenError::Unsupported`].
    Unsupported,
    /// [`TokenError::KeyError`].
    KeyError,
    /// [`TokenError::InvalidUrl`].
    InvalidUrl,
    /// [`TokenError::InvalidOptions`].
    InvalidOptions,
    /// A refusal of a newer version this one has no case for (the WIT
    /// `token-error::other`): answered as an invalid token.
    Other,
}

/// How a refusal is answered: an RFC 6750 §3.1 error code and its status,
/// or a server error.
///
/// The rule is RFC 6750 §3.1, because every token here is a bearer token
/// (CTA-5007 §4.4 calls a CAT one too):
///
/// * the token itself is no good — malformed, signed with an unknown key
///   or tampered, expired or not yet valid, for another issuer or audience,
///   already used when its `catreplay` forbids reuse, carrying a claim we
///   do not enforce — is `invalid_token`, **401**: "expired, revoked,
///   malformed, or invalid for other reasons". A replayed single-use token
///   is a revoked one: the client needs a new token, which is what 401
///   tells it (a player re-authenticates on 401); 403 would claim that the
///   credential is good but not allowed here, and stop it from trying;
/// * a good token for another stream, URL (`catu`) or access is
///   `insufficient_scope`, **403**: another token could be allowed, this
///   one never will be;
/// * a request URL we refuse to match a token against (dot segments, an
///   encoded `/`) is `invalid_request`, **400**: the request, not the
///   token, is malformed;
/// * a key or option error is ours (the edge's configuration), **500**,
///   with no error code for the client.
///
/// A request without any token is a 401 with a bare `Bearer` challenge
/// (RFC 6750 §3.1: no error code when the request has no credentials); that
/// is the caller's answer, there is no [`TokenError`] for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BearerError {
    /// `invalid_request`: the request is malformed → 400.
    InvalidRequest,
    /// `invalid_token`: the token is malformed, tampered, expired, revoked
    /// or otherwise no good → 401.
    InvalidToken,
    /// `insufficient_scope`: a good token that does not cover this request
    /// → 403.
    InsufficientScope,
    /// The verifier's own configuration failed → 500, no error code.
    Server,
}

impl BearerError {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::Server => 500,
        }
    }

    /// The `error` attribute of the `WWW-Authenticate: Bearer` challenge;
    /// `None` for [`Server`](Self::Server), which sends no challenge.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
            Self::Server => None,
        }
    }

    /// The `WWW-Authenticate` value for this refusal (RFC 6750 §3):
    /// `Bearer realm="REALM", error="CODE", error_description="TEXT"`, the
    /// description reduced to the characters §3 allows (printable ASCII
    /// without `"` and `\`). `None` for [`Server`](Self::Server).
    pub fn challenge(self, realm: &str, description: &str) -> Option<String> {
        let code = self.code()?;
        let description: String = description
            .chars()
            .map(|c| match c {
                '"' => '\'',
                '\\' => '/',
                ' '..='~' => c,
                _ => '?',
            })
            .collect();
        Some(format!(
            "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{description}\""
        ))
    }
}

impl TokenErrorKind {
    /// How this refusal is answered (see [`BearerError`] for why).
    pub fn bearer_error(self) -> BearerError {
        match self {
            Self::WrongResource => BearerError::InsufficientScope,
            Self::InvalidUrl => BearerError::InvalidRequest,
            Self::KeyError | Self::InvalidOptions => BearerError::Server,
            Self::Malformed
            | Self::UnknownKey
            | Self::AlgMismatch
            | Self::BadSignature
            | Self::Expired
            | Self::NotYetValid
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::Replayed
            | Self::UnsupportedClaim
            | Self::Unsupported
            | Self::Other => BearerError::InvalidToken,
        }
    }

    /// The HTTP status code: [`BearerError::status`] of
    /// [`bearer_error`](Self::bearer_error).
    pub fn status(self) -> u16 {
        self.bearer_error().status()
    }

    /// A short kebab-case code for the `x-livestack-reason` header: stable,
    /// safe to log, never containing token bytes.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed-token",
            Self::UnknownKey => "unknown-key",
            Self::AlgMismatch | Self::BadSignature => "bad-signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::WrongIssuer => "wrong-issuer",
            Self::WrongAudience => "wrong-audience",
            Self::WrongResource => "wrong-resource",
            Self::Replayed => "replayed",
            Self::UnsupportedClaim | Self::Unsupported => "unsupported-token",
            Self::KeyError => "key-error",
            Self::InvalidUrl => "invalid-url",
            Self::InvalidOptions => "invalid-options",
            Self::Other => "invalid-token",
        }
    }
}

impl TokenError {
    /// This error's [`TokenErrorKind`].
    pub fn kind(&self) -> TokenErrorKind {
        match self {
            Self::Malformed(_) => TokenErrorKind::Malformed,
            Self::UnknownKey(_) => TokenErrorKind::UnknownKey,
            Self::AlgMismatch { .. } => TokenErrorKind::AlgMismatch,
            Self::BadSignature => TokenErrorKind::BadSignature,
            Self::Expired => TokenErrorKind::Expired,
            Self::NotYetValid => TokenErrorKind::NotYetValid,
            Self::WrongIssuer => TokenErrorKind::WrongIssuer,
            Self::WrongAudience => TokenErrorKind::WrongAudience,
            Self::WrongResource(_) => TokenErrorKind::WrongResource,
            Self::Replayed => TokenErrorKind::Replayed,
            Self::UnsupportedClaim(_) => TokenErrorKind::UnsupportedClaim,
            Self::Unsupported(_) => TokenErrorKind::Unsupported,
            Self::KeyError(_) => TokenErrorKind::KeyError,
            Self::InvalidUrl(_) => TokenErrorKind::InvalidUrl,
            Self::InvalidOptions(_) => TokenErrorKind::InvalidOptions,
        }
    }

    /// How this refusal is answered ([`TokenErrorKind::bearer_error`]).
    pub fn bearer_error(&self) -> BearerError {
        self.kind().bearer_error()
    }

    /// The HTTP status code ([`TokenErrorKind::status`]).
    pub fn status(&self) -> u16 {
        self.kind().status()
    }

    /// The reason code ([`TokenErrorKind::reason`]).
    pub fn reason(&self) -> &'static str {
        self.kind().reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Alg, ResourceMismatch};

    /// Every variant, its status, RFC 6750 code and reason.
    #[test]
    fn status_table() {
        let table: [(TokenError, u16, Option<&str>, &str); 15] = [
            (
                TokenError::Malformed("x"),
                401,
                Some("invalid_token"),
                "malformed-token",
            ),
            (
                TokenError::UnknownKey("k".into()),
                401,
                Some("invalid_token"),
                "unknown-key",
            ),
            (
                TokenError::AlgMismatch {
                    kid: "k".into(),
                    expected: Alg::Es256,
                    found: Alg::Hs256,
                },
                401,
                Some("invalid_token"),
                "bad-signature",
            ),
            (
                TokenError::BadSignature,
                401,
                Some("invalid_token"),
                "bad-signature",
            ),
            (TokenError::Expired, 401, Some("invalid_token"), "expired"),
            (
                TokenError::NotYetValid,
                401,
                Some("invalid_token"),
                "not-yet-valid",
            ),
            (
                TokenError::WrongIssuer,
                401,
                Some("invalid_token"),
                "wrong-issuer",
            ),
            (
                TokenError::WrongAudience,
                401,
                Some("invalid_token"),
                "wrong-audience",
            ),
            (
                TokenError::WrongResource(ResourceMismatch::Unscoped),
                403,
                Some("insufficient_scope"),
                "wrong-resource",
            ),
            (TokenError::Replayed, 401, Some("invalid_token"), "replayed"),
            (
                TokenError::UnsupportedClaim("catnip".into()),
                401,
                Some("invalid_token"),
                "unsupported-token",
            ),
            (
                TokenError::Unsupported("alg none"),
                401,
                Some("invalid_token"),
                "unsupported-token",
            ),
            (TokenError::KeyError("k".into()), 500, None, "key-error"),
            (
                TokenError::InvalidUrl("dots"),
                400,
                Some("invalid_request"),
                "invalid-url",
            ),
            (
                TokenError::InvalidOptions("skew"),
                500,
                None,
                "invalid-options",
            ),
        ];
        for (error, status, code, reason) in table {
            assert_eq!(error.status(), status, "{error:?}");
            assert_eq!(error.bearer_error().code(), code, "{error:?}");
            assert_eq!(error.reason(), reason, "{error:?}");
        }
        assert_eq!(TokenErrorKind::Other.status(), 401);
    }

    #[test]
    fn challenge_stays_in_the_rfc_6750_character_set() {
        let c = BearerError::InvalidToken
            .challenge("livestack", "token is for stream \"a\\b\", not é")
            .unwrap();
        let description = c.split("error_description=\"").nth(1).unwrap();
        let description = description.strip_suffix('"').unwrap();
        assert!(
            description
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
            "{c}"
        );
        assert!(c.starts_with("Bearer realm=\"livestack\", error=\"invalid_token\""));
        assert_eq!(BearerError::Server.challenge("livestack", "x"), None);
    }
}
