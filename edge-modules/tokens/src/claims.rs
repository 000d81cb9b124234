//! Typed claims shared by CAT and JWT.

use std::fmt;

use crate::Catu;

/// What a session token allows on its stream (custom claim `access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Publish (WHIP, SRT push, MoQ announce).
    Publish,
    /// Play (WHEP, HLS, MoQ subscribe).
    Play,
}

impl Access {
    /// The claim text: `publish` or `play`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Publish => "publish",
            Access::Play => "play",
        }
    }

    /// Parse the claim text.
    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "publish" => Some(Access::Publish),
            "play" => Some(Access::Play),
            _ => None,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `catreplay` claim (CTA-5007, claim key 308).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReplayPolicy {
    /// 0: the token may be used any number of times (also the meaning of an
    /// absent claim).
    #[default]
    Permitted,
    /// 1: the token may be used once; later uses are refused.
    Prohibited,
    /// 2: reuse is allowed but must be detected (reported, e.g. logged and
    /// counted).
    ReuseDetection,
}

impl ReplayPolicy {
    /// The CBOR value.
    pub fn value(self) -> u64 {
        match self {
            ReplayPolicy::Permitted => 0,
            ReplayPolicy::Prohibited => 1,
            ReplayPolicy::ReuseDetection => 2,
        }
    }

    /// The policy for a CBOR value.
    pub fn from_value(v: i128) -> Option<ReplayPolicy> {
        match v {
            0 => Some(ReplayPolicy::Permitted),
            1 => Some(ReplayPolicy::Prohibited),
            2 => Some(ReplayPolicy::ReuseDetection),
            _ => None,
        }
    }
}

/// How a renewed token is handed to the client (`catr` type, CTA-5007
/// renewal claim, key 323, parameter 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenewalKind {
    /// 0: the same way the token arrived (header, cookie or query).
    Automatic,
    /// 1: in a `Set-Cookie` header.
    Cookie,
    /// 2: in a response header.
    Header,
    /// 3: by redirecting to the URL with the new token in the query.
    Redirect,
}

impl RenewalKind {
    /// The CBOR value.
    pub fn value(self) -> u64 {
        match self {
            RenewalKind::Automatic => 0,
            RenewalKind::Cookie => 1,
            RenewalKind::Header => 2,
            RenewalKind::Redirect => 3,
        }
    }

    /// The kind for a CBOR value.
    pub fn from_value(v: i128) -> Option<RenewalKind> {
        match v {
            0 => Some(RenewalKind::Automatic),
            1 => Some(RenewalKind::Cookie),
            2 => Some(RenewalKind::Header),
            3 => Some(RenewalKind::Redirect),
            _ => None,
        }
    }
}

/// The `catr` claim (renewal, key 323): parameter keys 0 type, 1 expadd,
/// 2 deadline, 3 cookie name, 4 header name, 5 cookie params, 6 header
/// params, 7 redirect status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catr {
    /// How to deliver the renewed token.
    pub kind: RenewalKind,
    /// Lifetime of the renewed token in seconds: its `exp` is the renewal
    /// time plus `expadd`.
    pub expadd: u64,
    /// Renew once the token has at most this many seconds left; `None`
    /// means [`DEFAULT_RENEWAL_DEADLINE`] seconds.
    pub deadline: Option<u64>,
    /// Cookie name for [`RenewalKind::Cookie`].
    pub cookie_name: Option<String>,
    /// Header name for [`RenewalKind::Header`].
    pub header_name: Option<String>,
    /// Extra cookie attributes (`Secure`, `Path=/`...).
    pub cookie_params: Vec<String>,
    /// Extra header parameters.
    pub header_params: Vec<String>,
    /// HTTP status of the redirect for [`RenewalKind::Redirect`] (e.g. 302).
    pub status_code: Option<u16>,
}

/// Renewal window when `catr` gives no deadline, in seconds before `exp`
/// (node-cat's default).
pub const DEFAULT_RENEWAL_DEADLINE: u64 = 60;

impl Catr {
    /// An automatic renewal adding `expadd` seconds, in the last `deadline`
    /// seconds of the token's life.
    pub fn automatic(expadd: u64, deadline: u64) -> Catr {
        Catr {
            kind: RenewalKind::Automatic,
            expadd,
            deadline: Some(deadline),
            cookie_name: None,
            header_name: None,
            cookie_params: Vec::new(),
            header_params: Vec::new(),
            status_code: None,
        }
    }
}

/// The claims of a CAT or JWT, typed. Times are Unix seconds (NumericDate,
/// RFC 7519 §2).
///
/// CWT keys (RFC 8392 §3.1): iss 1, sub 2, aud 3, exp 4, nbf 5, iat 6,
/// cti 7. CAT keys (CTA-5007): catreplay 308, catv 310, catu 312, catr 323,
/// crit 45. This crate's private-use keys (RFC 8392 §9.1: below -65536):
/// stream [`CLAIM_STREAM`], access [`CLAIM_ACCESS`]; in JWT they are the
/// members `stream` and `access`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Claims {
    /// `iss`: who minted the token.
    pub iss: Option<String>,
    /// `sub`: who the token is for (a user or publisher id).
    pub sub: Option<String>,
    /// `aud`: the intended verifiers (CWT/JWT allow one string or an array).
    pub aud: Vec<String>,
    /// `exp`: expiry, Unix seconds. Required when verifying.
    pub exp: Option<u64>,
    /// `nbf`: not before, Unix seconds.
    pub nbf: Option<u64>,
    /// `iat`: issued at, Unix seconds.
    pub iat: Option<u64>,
    /// `cti` (CAT, a byte string) or `jti` (JWT, its UTF-8 bytes): the token
    /// id, used for replay detection.
    pub id: Option<Vec<u8>>,
    /// Private claim: the stream the token is for.
    pub stream: Option<String>,
    /// Private claim: what the token allows on the stream.
    pub access: Option<Access>,
    /// `catv`: CAT version; 1 if present.
    pub catv: Option<u64>,
    /// `catu`: URI restrictions.
    pub catu: Option<Catu>,
    /// `catr`: renewal instructions.
    pub catr: Option<Catr>,
    /// `catreplay`: replay policy (absent means permitted).
    pub catreplay: Option<ReplayPolicy>,
}

/// Private-use CWT claim key of the stream name (text).
pub const CLAIM_STREAM: i64 = -65537;
/// Private-use CWT claim key of the access (`"publish"` or `"play"`).
pub const CLAIM_ACCESS: i64 = -65538;

impl Claims {
    /// The replay policy (absent `catreplay` means permitted).
    pub fn replay_policy(&self) -> ReplayPolicy {
        // CTA-5007: an absent catreplay claim means replay is permitted (the Default).
        self.catreplay.unwrap_or_default()
    }
}
