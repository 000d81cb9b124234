//! The tokens edge component: `livestack:edge/tokens` over
//! `livestack-tokens` (CTA-5007 CAT and RFC 7519 JWT).
//!
//! Keys are used by handle (`livestack:edge/keys`): the host verifies and
//! signs by key id, and the key bytes never enter this module. Replay
//! records go to the host's `kv`.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "tokens-component",
});

mod convert;
#[path = "../../host-keys.rs"]
mod host_keys;

use exports::livestack::edge::tokens::Guest;
use livestack::edge::types::{
    MintRequest, Renewal, ReplayOutcome, TokenError, TokenFormat, Verified,
};
use livestack::edge::{config, kv};
use livestack_tokens as pure;

use convert::{access_from_wit, claims_to_wit, error_to_wit, renewal_kind_to_wit};
use host_keys::HostKeys;

struct Tokens;

impl Guest for Tokens {
    fn verify(token: String, url: String, now_unix_s: u64) -> Result<Verified, TokenError> {
        let opts = verify_options(&url, now_unix_s)?;
        let verified = pure::verify(&token, &HostKeys, &opts).map_err(error_to_wit)?;

        let newly_recorded = match verified.replay.record() {
            Some((key, ttl_secs)) => kv::set_if_absent(key, b"1", ttl_secs.saturating_mul(1000))
                .map_err(|e| {
                    TokenError::Other(format!("replay store refused the record: {e:?}"))
                })?,
            None => true,
        };
        let replay = match verified
            .replay
            .outcome(newly_recorded)
            .map_err(error_to_wit)?
        {
            pure::ReplayOutcome::NotTracked => ReplayOutcome::NotTracked,
            pure::ReplayOutcome::FirstUse => ReplayOutcome::FirstUse,
            pure::ReplayOutcome::ReuseDetected => ReplayOutcome::ReuseDetected,
        };
        let renewal = renew(&verified.claims, now_unix_s);
        Ok(Verified {
            format: match verified.kind {
                pure::TokenKind::Cat => TokenFormat::Cat,
                pure::TokenKind::Jwt => TokenFormat::Jwt,
            },
            kid: verified.kid,
            alg: verified.alg.jose_name().to_owned(),
            claims: claims_to_wit(verified.claims),
            replay,
            renewal,
        })
    }

    fn mint(request: MintRequest) -> Result<String, TokenError> {
        let id = match request.id {
            Some(id) => id,
            None => random_id()?,
        };
        let mut req = pure::MintRequest::for_stream(
            &request.stream,
            access_from_wit(request.access),
            request.now_unix_s,
            u64::from(request.ttl_s),
            id,
        )
        .map_err(error_to_wit)?;
        req.claims.iss = request.iss.or_else(|| config::get("tokens.issuer"));
        req.claims.sub = request.sub;
        req.claims.aud = if request.aud.is_empty() {
            config::get("tokens.audience").into_iter().collect()
        } else {
            request.aud
        };
        req.kid = request.kid;
        match request.format {
            TokenFormat::Cat => pure::mint_cat(&req, &HostKeys),
            TokenFormat::Jwt => {
                let name = request
                    .alg
                    .or_else(|| config::get("tokens.jwt-alg"))
                    .unwrap_or_else(|| "HS256".to_owned());
                let alg = pure::Alg::from_jose_name(&name).ok_or_else(|| {
                    TokenError::InvalidOptions(format!("unknown JWT algorithm {name:?}"))
                })?;
                let mut req = req.without_cat_claims();
                req.alg = Some(alg);
                pure::mint_jwt(&req, &HostKeys)
            }
        }
        .map_err(error_to_wit)
    }
}

/// Verification options from the call and the `tokens.*` config keys.
fn verify_options(url: &str, now: u64) -> Result<pure::VerifyOptions, TokenError> {
    let mut opts = pure::VerifyOptions::new(now);
    opts.issuer = config::get("tokens.issuer");
    opts.audience = config::get("tokens.audience");
    if let Some(skew) = config::get("tokens.skew-s") {
        opts.skew = skew
            .trim()
            .parse()
            .map_err(|_| TokenError::InvalidOptions("tokens.skew-s is not a number".into()))?;
    }
    if let Some(access) = config::get("tokens.access") {
        opts.access = Some(pure::Access::parse(access.trim()).ok_or_else(|| {
            TokenError::InvalidOptions("tokens.access is neither play nor publish".into())
        })?);
    }
    if !url.is_empty() {
        opts.url = Some(pure::RequestUrl::parse(url).map_err(error_to_wit)?);
    }
    Ok(opts)
}

/// The renewed token for verified `claims`, if they ask for renewal now
/// (`catr`) and an HS256 signing key is configured.
fn renew(claims: &pure::Claims, now: u64) -> Option<Renewal> {
    let renewal = pure::renewal(claims, now)?;
    let req = renewal.mint_request(claims, now, random_id().ok()?);
    let token = pure::mint_cat(&req, &HostKeys).ok()?;
    Some(Renewal {
        token,
        kind: renewal_kind_to_wit(renewal.kind),
        exp: renewal.exp,
        cookie_name: renewal.cookie_name,
        header_name: renewal.header_name,
        cookie_params: renewal.cookie_params,
        header_params: renewal.header_params,
        status_code: renewal.status_code,
    })
}

/// A token id: 16 random bytes from WASI `random`, as 32 lower-case hex
/// characters (text, so it is also a valid JWT `jti`).
fn random_id() -> Result<Vec<u8>, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|_| TokenError::Other("no randomness for a token id".into()))?;
    Ok(bytes
        .iter()
        .flat_map(|b| {
            let hex = |n: u8| b"0123456789abcdef"[usize::from(n)];
            [hex(b >> 4), hex(b & 0x0f)]
        })
        .collect())
}

export!(Tokens);
