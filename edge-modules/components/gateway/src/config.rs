//! Configuration from the environment (`wasi:cli/environment`, read through
//! `std::env`): the only configuration channel every WASI 0.2 HTTP host has
//! (`wasmtime serve --env`, `jco serve` passes its process environment, the
//! livestack edge host sets it per component).
//!
//! | variable | required | meaning |
//! |---|---|---|
//! | `LIVESTACK_ORIGIN` | for `/live/` | base URL of the origin, e.g. `http://127.0.0.1:8080` (no trailing `/` needed) |
//! | `LIVESTACK_ORIGIN_CREDENTIAL` | for a closed origin | the edge credential, sent to the origin in `x-livestack-edge-credential` |
//! | `LIVESTACK_TOKEN_KEYS` | yes | key set in the `livestack-tokens` key-configuration format (`kid:ALG:...`, comma separated) |
//! | `LIVESTACK_TOKEN_ISSUER` | no | required `iss` of presented tokens, and the `iss` of minted session tokens |
//! | `LIVESTACK_TOKEN_AUDIENCE` | no | this edge's audience: presented tokens that carry an `aud` must name it (without it, such tokens are refused, RFC 7519 §4.1.3) |
//! | `LIVESTACK_NODES` | for signaling | registry view as JSON, see [`crate::registry`] |
//! | `LIVESTACK_POP_LOCATION` | no | `LAT,LON` (WGS 84 degrees) of this PoP, used as the client's location for routing |
//! | `LIVESTACK_POP_COUNTRY` | no | ISO 3166-1 alpha-2 country of this PoP, used when the location is not set |

use livestack_routing::GeoPoint;
use livestack_tokens::KeySet;

use crate::registry::Registry;

/// Why the configuration is unusable. Answered with 500 and the reason
/// header `config`; the message names the variable, never its value.
#[derive(Debug)]
pub enum ConfigError {
    /// A required variable is not set.
    Missing(&'static str),
    /// A variable is set but does not parse.
    Invalid(&'static str, String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(var) => write!(f, "{var} is not set"),
            Self::Invalid(var, why) => write!(f, "{var} is invalid: {why}"),
        }
    }
}

/// The gateway's configuration, read per request (a component instance may
/// serve only one request; reading a few variables costs microseconds).
pub struct Config {
    /// `LIVESTACK_ORIGIN` without a trailing `/`.
    pub origin: Option<String>,
    /// `LIVESTACK_ORIGIN_CREDENTIAL`: the shared secret a closed origin
    /// requires of its edges.
    pub origin_credential: Option<String>,
    /// `LIVESTACK_TOKEN_KEYS`, parsed.
    pub keys: KeySet,
    /// `LIVESTACK_TOKEN_ISSUER`.
    pub issuer: Option<String>,
    /// `LIVESTACK_TOKEN_AUDIENCE`.
    pub audience: Option<String>,
    /// `LIVESTACK_NODES`, parsed; empty when unset.
    pub registry: Registry,
    /// `LIVESTACK_POP_LOCATION`, parsed.
    pub location: Option<GeoPoint>,
    /// `LIVESTACK_POP_COUNTRY`.
    pub country: Option<String>,
}

impl Config {
    /// Reads and parses the environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let keys = var("LIVESTACK_TOKEN_KEYS")
            .ok_or(ConfigError::Missing("LIVESTACK_TOKEN_KEYS"))?
            .parse::<KeySet>()
            .map_err(|e| ConfigError::Invalid("LIVESTACK_TOKEN_KEYS", e.to_string()))?;
        let registry = match var("LIVESTACK_NODES") {
            Some(json) => Registry::parse(&json)
                .map_err(|e| ConfigError::Invalid("LIVESTACK_NODES", e.to_string()))?,
            None => Registry::default(),
        };
        let location = match var("LIVESTACK_POP_LOCATION") {
            Some(text) => Some(parse_location(&text).ok_or(ConfigError::Invalid(
                "LIVESTACK_POP_LOCATION",
                "expected LAT,LON in degrees".into(),
            ))?),
            None => None,
        };
        Ok(Self {
            origin: var("LIVESTACK_ORIGIN").map(|o| o.trim_end_matches('/').to_owned()),
            origin_credential: var("LIVESTACK_ORIGIN_CREDENTIAL"),
            keys,
            issuer: var("LIVESTACK_TOKEN_ISSUER"),
            audience: var("LIVESTACK_TOKEN_AUDIENCE"),
            registry,
            location,
            country: var("LIVESTACK_POP_COUNTRY"),
        })
    }
}

/// `LAT,LON` in degrees, within -90..=90 and -180..=180.
fn parse_location(text: &str) -> Option<GeoPoint> {
    let (lat, lon) = text.split_once(',')?;
    let lat: f64 = lat.trim().parse().ok()?;
    let lon: f64 = lon.trim().parse().ok()?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
        .then(|| GeoPoint::new(lat, lon))
}

/// A non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
