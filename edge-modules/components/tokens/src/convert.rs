//! Conversions between `livestack-tokens` types and the WIT types.

use crate::livestack::edge::types::{
    Access, AlgMismatch, Claims, RenewalKind, ReplayPolicy, ResourceMismatch, TokenError,
};
use livestack_tokens as pure;

pub(crate) fn access_from_wit(a: Access) -> pure::Access {
    match a {
        Access::Play => pure::Access::Play,
        Access::Publish => pure::Access::Publish,
    }
}

pub(crate) fn access_to_wit(a: pure::Access) -> Access {
    match a {
        pure::Access::Play => Access::Play,
        pure::Access::Publish => Access::Publish,
    }
}

pub(crate) fn claims_to_wit(c: pure::Claims) -> Claims {
    Claims {
        iss: c.iss,
        sub: c.sub,
        aud: c.aud,
        exp: c.exp,
        nbf: c.nbf,
        iat: c.iat,
        id: c.id,
        stream: c.stream,
        access: c.access.map(access_to_wit),
        catv: c.catv,
        catreplay: c.catreplay.map(|p| match p {
            pure::ReplayPolicy::Permitted => ReplayPolicy::Permitted,
            pure::ReplayPolicy::Prohibited => ReplayPolicy::Prohibited,
            pure::ReplayPolicy::ReuseDetection => ReplayPolicy::ReuseDetection,
        }),
    }
}

pub(crate) fn renewal_kind_to_wit(k: pure::RenewalKind) -> RenewalKind {
    match k {
        pure::RenewalKind::Automatic => RenewalKind::Automatic,
        pure::RenewalKind::Cookie => RenewalKind::Cookie,
        pure::RenewalKind::Header => RenewalKind::Header,
        pure::RenewalKind::Redirect => RenewalKind::Redirect,
    }
}

pub(crate) fn error_to_wit(e: pure::TokenError) -> TokenError {
    use pure::TokenError as E;
    match e {
        E::Malformed(m) => TokenError::Malformed(m.to_owned()),
        E::UnknownKey(kid) => TokenError::UnknownKey(kid),
        E::AlgMismatch {
            kid,
            expected,
            found,
        } => TokenError::AlgMismatch(AlgMismatch {
            kid,
            expected: expected.jose_name().to_owned(),
            found: found.jose_name().to_owned(),
        }),
        E::BadSignature => TokenError::BadSignature,
        E::Expired => TokenError::Expired,
        E::NotYetValid => TokenError::NotYetValid,
        E::WrongIssuer => TokenError::WrongIssuer,
        E::WrongAudience => TokenError::WrongAudience,
        E::WrongResource(m) => TokenError::WrongResource(match m {
            pure::ResourceMismatch::Stream { token, request } => {
                ResourceMismatch::Stream((token, request))
            }
            pure::ResourceMismatch::Uri(c) => ResourceMismatch::Uri(c.to_string()),
            pure::ResourceMismatch::Access { token, request } => {
                ResourceMismatch::Access((token.map(access_to_wit), access_to_wit(request)))
            }
            pure::ResourceMismatch::Unscoped => ResourceMismatch::Unscoped,
            other => ResourceMismatch::Other(other.to_string()),
        }),
        E::Replayed => TokenError::Replayed,
        E::UnsupportedClaim(c) => TokenError::UnsupportedClaim(c),
        E::Unsupported(m) => TokenError::Unsupported(m.to_owned()),
        E::KeyError(m) => TokenError::KeyError(m),
        E::InvalidUrl(m) => TokenError::InvalidUrl(m.to_owned()),
        E::InvalidOptions(m) => TokenError::InvalidOptions(m.to_owned()),
        other => TokenError::Other(other.to_string()),
    }
}
