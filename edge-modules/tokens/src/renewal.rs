//! Token renewal (CTA-5007 `catr`): whether and how to hand out a fresh
//! token with a verified request.

use crate::{Claims, DEFAULT_RENEWAL_DEADLINE, MintRequest, RenewalKind};

/// A renewal to perform: mint [`Renewal::mint_request`] with
/// [`mint_cat`](crate::mint_cat) and deliver it as `kind` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// How to deliver the new token.
    pub kind: RenewalKind,
    /// `exp` of the new token, Unix seconds (`now + expadd`).
    pub exp: u64,
    /// Cookie name for [`RenewalKind::Cookie`] (or automatic via cookie).
    pub cookie_name: Option<String>,
    /// Header name for [`RenewalKind::Header`] (or automatic via header).
    pub header_name: Option<String>,
    /// Extra cookie attributes.
    pub cookie_params: Vec<String>,
    /// Extra header parameters.
    pub header_params: Vec<String>,
    /// Redirect status code for [`RenewalKind::Redirect`].
    pub status_code: Option<u16>,
}

/// Whether verified `claims` ask for renewal at `now` (Unix seconds): they
/// carry `catr`, the token has not expired, and at most `deadline` seconds
/// (default [`DEFAULT_RENEWAL_DEADLINE`]) are left.
pub fn renewal(claims: &Claims, now: u64) -> Option<Renewal> {
    let catr = claims.catr.as_ref()?;
    let exp = claims.exp?;
    let deadline = catr.deadline.unwrap_or(DEFAULT_RENEWAL_DEADLINE);
    if now >= exp || now < exp.saturating_sub(deadline) {
        return None;
    }
    Some(Renewal {
        kind: catr.kind,
        exp: now.saturating_add(catr.expadd),
        cookie_name: catr.cookie_name.clone(),
        header_name: catr.header_name.clone(),
        cookie_params: catr.cookie_params.clone(),
        header_params: catr.header_params.clone(),
        status_code: catr.status_code,
    })
}

impl Renewal {
    /// The mint request for the renewed token: the same claims with
    /// `iat = now`, no `nbf`, `exp` from this renewal and the new token id
    /// `new_id` (a fresh id, so replay records of the old token do not
    /// block it). It is signed by the current HS256 signing key.
    pub fn mint_request(
        &self,
        claims: &Claims,
        now: u64,
        new_id: impl Into<Vec<u8>>,
    ) -> MintRequest {
        let mut claims = claims.clone();
        claims.iat = Some(now);
        claims.nbf = None;
        claims.exp = Some(self.exp);
        claims.id = Some(new_id.into());
        MintRequest {
            kid: None,
            alg: Some(crate::Alg::Hs256),
            claims,
        }
    }
}
