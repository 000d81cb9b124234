//! Options and claim checks shared by CAT and JWT verification, and the
//! mint request.

use crate::{
    Access, Alg, Catu, Claims, ReplayCheck, RequestUrl, ResourceMismatch, TokenError,
    is_valid_stream_name, stream_path_prefix,
};

/// Default allowed clock skew, in seconds.
pub const DEFAULT_SKEW_SECS: u64 = 30;
/// Largest clock skew [`VerifyOptions`] accepts, in seconds.
pub const MAX_SKEW_SECS: u64 = 300;
/// Longest token text accepted, in bytes (before any decoding).
pub const MAX_TOKEN_LEN: usize = 8192;
/// Longest token id (`cti`/`jti`) minted or accepted, in bytes.
pub const MAX_TOKEN_ID_LEN: usize = 128;

/// Which token format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// CTA-5007 Common Access Token: a CWT (RFC 8392) in COSE_Mac0
    /// (RFC 9052 §6.2), HMAC 256/256, base64url without padding.
    Cat,
    /// JWT (RFC 7519) in JWS compact serialization (RFC 7515 §7.1).
    Jwt,
}

impl TokenKind {
    /// Guess the kind from the text: two dots make a JWS compact JWT, none a
    /// CAT (base64url has no dots). `None` for anything else.
    pub fn detect(token: &str) -> Option<TokenKind> {
        match token.bytes().filter(|&b| b == b'.').count() {
            0 => Some(TokenKind::Cat),
            2 => Some(TokenKind::Jwt),
            _ => None,
        }
    }

    /// `cat` or `jwt`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Cat => "cat",
            TokenKind::Jwt => "jwt",
        }
    }
}

/// What a verification checks the token against. `now` comes from the
/// caller: this crate never reads a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Current time, Unix seconds.
    pub now: u64,
    /// Allowed clock skew in seconds, applied to `exp`, `nbf` and `iat`
    /// (default [`DEFAULT_SKEW_SECS`], at most [`MAX_SKEW_SECS`]).
    pub skew: u64,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// This verifier's audience: `aud` must contain it. When `None`, tokens
    /// that carry an `aud` are refused (RFC 7519 §4.1.3).
    pub audience: Option<String>,
    /// The request URL: `catu` is checked against it, and a `/live/NAME/`
    /// path makes the request one for stream `NAME`. Without a URL `catu` is
    /// not checked: callers that serve a URL must pass it.
    pub url: Option<RequestUrl>,
    /// The stream the request is for (session set-up: WHIP, WHEP,
    /// WebTransport). The token's stream claim must name it.
    pub stream: Option<String>,
    /// The access the request needs: the token's `access` must equal it.
    pub access: Option<Access>,
}

impl VerifyOptions {
    /// Options checking only signature and times, with the default skew.
    pub fn new(now: u64) -> VerifyOptions {
        VerifyOptions {
            now,
            skew: DEFAULT_SKEW_SECS,
            issuer: None,
            audience: None,
            url: None,
            stream: None,
            access: None,
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// CAT or JWT.
    pub kind: TokenKind,
    /// The key id that verified it.
    pub kid: String,
    /// The algorithm that verified it.
    pub alg: Alg,
    /// The claims.
    pub claims: Claims,
    /// What the caller must do against replay (see [`ReplayCheck`]).
    pub replay: ReplayCheck,
}

/// What to mint: the key (by `kid`, else the signing key of `alg`) and the
/// claims.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MintRequest {
    /// Key id to sign with; `None` means the signing key of `alg`.
    pub kid: Option<String>,
    /// Algorithm; `None` means the algorithm of `kid` (CAT: always HS256).
    pub alg: Option<Alg>,
    /// The claims. `exp` is required.
    pub claims: Claims,
}

impl MintRequest {
    /// A token for one stream, valid from `now` for `ttl_secs` seconds,
    /// with token id `id` (unique: it keys replay detection), carrying both
    /// the `catu` path prefix `/live/NAME/` (for CAT; JWT cannot carry
    /// `catu`) and the private `stream` and `access` claims.
    pub fn for_stream(
        stream: &str,
        access: Access,
        now: u64,
        ttl_secs: u64,
        id: impl Into<Vec<u8>>,
    ) -> Result<MintRequest, TokenError> {
        if !is_valid_stream_name(stream) {
            return Err(TokenError::InvalidOptions("invalid stream name"));
        }
        let exp = now
            .checked_add(ttl_secs)
            .ok_or(TokenError::InvalidOptions("exp overflows"))?;
        let claims = Claims {
            exp: Some(exp),
            iat: Some(now),
            id: Some(id.into()),
            stream: Some(stream.to_owned()),
            access: Some(access),
            catv: Some(1),
            catu: Some(Catu::path_prefix(stream_path_prefix(stream))),
            ..Claims::default()
        };
        Ok(MintRequest {
            kid: None,
            alg: None,
            claims,
        })
    }

    /// This request without the CAT-only claims (`catu`, `catr`,
    /// `catreplay`, `catv`), for minting the same grant as a JWT.
    pub fn without_cat_claims(mut self) -> MintRequest {
        self.claims.catu = None;
        self.claims.catr = None;
        self.claims.catreplay = None;
        self.claims.catv = None;
        self
    }
}

/// A NumericDate given as a float (RFC 7519 §2 allows fractions): whole
/// seconds, `None` when negative, not finite or beyond `u64`.
pub(crate) fn float_secs(f: f64) -> Option<u64> {
    // `as` saturates; the range check keeps saturation from hiding garbage.
    (f.is_finite() && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then(|| f.floor() as u64)
}

/// Checks on claims before minting (shared by CAT and JWT).
pub(crate) fn check_mint_claims(claims: &Claims) -> Result<(), TokenError> {
    let exp = claims
        .exp
        .ok_or(TokenError::InvalidOptions("exp is required"))?;
    if let Some(iat) = claims.iat
        && iat >= exp
    {
        return Err(TokenError::InvalidOptions("exp must be after iat"));
    }
    if let Some(nbf) = claims.nbf
        && nbf >= exp
    {
        return Err(TokenError::InvalidOptions("exp must be after nbf"));
    }
    if let Some(stream) = &claims.stream
        && !is_valid_stream_name(stream)
    {
        return Err(TokenError::InvalidOptions("invalid stream name"));
    }
    if let Some(id) = &claims.id
        && (id.is_empty() || id.len() > MAX_TOKEN_ID_LEN)
    {
        return Err(TokenError::InvalidOptions(
            "token id must be 1 to 128 bytes",
        ));
    }
    if claims.catv.is_some_and(|v| v != 1) {
        return Err(TokenError::InvalidOptions("catv must be 1"));
    }
    if claims.replay_policy() != crate::ReplayPolicy::Permitted && claims.id.is_none() {
        return Err(TokenError::InvalidOptions("catreplay needs a token id"));
    }
    Ok(())
}

/// Claim checks after the signature verified: times, issuer, audience,
/// resource (stream, `catu`, access). Also checks the options themselves.
pub(crate) fn check_claims(claims: &Claims, opts: &VerifyOptions) -> Result<(), TokenError> {
    if opts.skew > MAX_SKEW_SECS {
        return Err(TokenError::InvalidOptions("skew above 300 s"));
    }
    let now = opts.now;
    let exp = claims.exp.ok_or(TokenError::Malformed("missing exp"))?;
    // RFC 7519 §4.1.4: the current time MUST be before exp (plus leeway).
    if now >= exp.saturating_add(opts.skew) {
        return Err(TokenError::Expired);
    }
    let latest_start = now.saturating_add(opts.skew);
    if claims.nbf.is_some_and(|nbf| nbf > latest_start)
        || claims.iat.is_some_and(|iat| iat > latest_start)
    {
        return Err(TokenError::NotYetValid);
    }
    if let Some(issuer) = &opts.issuer
        && claims.iss.as_ref() != Some(issuer)
    {
        return Err(TokenError::WrongIssuer);
    }
    match &opts.audience {
        Some(aud) if !claims.aud.contains(aud) => return Err(TokenError::WrongAudience),
        None if !claims.aud.is_empty() => return Err(TokenError::WrongAudience),
        _ => {}
    }
    check_resource(claims, opts)
}

fn check_resource(claims: &Claims, opts: &VerifyOptions) -> Result<(), TokenError> {
    let url_stream = opts.url.as_ref().and_then(RequestUrl::stream);
    // A `/live/…` URL whose stream name this verifier cannot read (a
    // percent-encoded spelling, `/live/cam%32/`, which the origin would
    // decode into another stream's name) is no request for any stream a
    // token names: refused, rather than checked as if unscoped.
    let under_live = opts.url.as_ref().is_some_and(RequestUrl::is_stream_path);
    if under_live && url_stream.is_none() {
        return Err(TokenError::InvalidUrl(
            "the stream name in a /live/ path must be written plainly (letters, digits, . _ ~ -)",
        ));
    }
    for request in [opts.stream.as_deref(), url_stream].into_iter().flatten() {
        match &claims.stream {
            Some(token) if token != request => {
                return Err(TokenError::WrongResource(ResourceMismatch::Stream {
                    token: token.clone(),
                    request: request.to_owned(),
                }));
            }
            Some(_) => {}
            None if claims.catu.is_none() || opts.url.is_none() => {
                return Err(TokenError::WrongResource(ResourceMismatch::Unscoped));
            }
            None => {}
        }
    }
    if let (Some(catu), Some(url)) = (&claims.catu, &opts.url) {
        catu.check(url)?;
    }
    // A `/live/NAME/` request is playback: a token minted for publishing
    // never plays, even where no access is configured (a token with no
    // access claim, e.g. from another CAT issuer, is not restricted).
    if opts.access.is_none() && under_live && claims.access == Some(Access::Publish) {
        return Err(TokenError::WrongResource(ResourceMismatch::Access {
            token: claims.access,
            request: Access::Play,
        }));
    }
    if let Some(request) = opts.access
        && claims.access != Some(request)
    {
        return Err(TokenError::WrongResource(ResourceMismatch::Access {
            token: claims.access,
            request,
        }));
    }
    Ok(())
}
