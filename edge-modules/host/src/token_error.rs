//! The WIT `token-error` read as a [`TokenErrorKind`], so that the native
//! edge answers a refusal from the same table as the gateway component
//! ([`livestack_tokens::TokenError::status`]).

use livestack_tokens::TokenErrorKind;

use crate::TokenError;

impl TokenError {
    /// The kind of this refusal, variant for variant; `other` (a case of a
    /// newer interface) is [`TokenErrorKind::Other`]. Its
    /// [`status`](TokenErrorKind::status) and
    /// [`reason`](TokenErrorKind::reason) are the HTTP answer.
    pub fn kind(&self) -> TokenErrorKind {
        match self {
            Self::Malformed(_) => TokenErrorKind::Malformed,
            Self::UnknownKey(_) => TokenErrorKind::UnknownKey,
            Self::AlgMismatch(_) => TokenErrorKind::AlgMismatch,
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
            Self::Other(_) => TokenErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlgMismatch, ResourceMismatch};

    /// Each WIT case answers with the status of the `livestack-tokens`
    /// error of the same name (what the gateway answers).
    #[test]
    fn wit_errors_answer_like_the_pure_ones() {
        use livestack_tokens::{Alg, ResourceMismatch as R, TokenError as E};
        let pairs = [
            (TokenError::Malformed("x".into()), E::Malformed("x")),
            (
                TokenError::UnknownKey("k".into()),
                E::UnknownKey("k".into()),
            ),
            (
                TokenError::AlgMismatch(AlgMismatch {
                    kid: "k".into(),
                    expected: "ES256".into(),
                    found: "HS256".into(),
                }),
                E::AlgMismatch {
                    kid: "k".into(),
                    expected: Alg::Es256,
                    found: Alg::Hs256,
                },
            ),
            (TokenError::BadSignature, E::BadSignature),
            (TokenError::Expired, E::Expired),
            (TokenError::NotYetValid, E::NotYetValid),
            (TokenError::WrongIssuer, E::WrongIssuer),
            (TokenError::WrongAudience, E::WrongAudience),
            (
                TokenError::WrongResource(ResourceMismatch::Unscoped),
                E::WrongResource(R::Unscoped),
            ),
            (TokenError::Replayed, E::Replayed),
            (
                TokenError::UnsupportedClaim("c".into()),
                E::UnsupportedClaim("c".into()),
            ),
            (TokenError::Unsupported("u".into()), E::Unsupported("u")),
            (TokenError::KeyError("k".into()), E::KeyError("k".into())),
            (TokenError::InvalidUrl("u".into()), E::InvalidUrl("u")),
            (
                TokenError::InvalidOptions("o".into()),
                E::InvalidOptions("o"),
            ),
        ];
        for (wit, pure) in pairs {
            assert_eq!(wit.kind(), pure.kind(), "{wit:?}");
            assert_eq!(wit.kind().status(), pure.status(), "{wit:?}");
        }
        assert_eq!(TokenError::Replayed.kind().status(), 401);
        assert_eq!(TokenError::Other("new".into()).kind().status(), 401);
    }
}
