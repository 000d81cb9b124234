//! Viewer token verification for `/live/` (CTA-5007 CAT or JWT, told apart
//! by shape), and the clock and randomness the pure crates are given.

use livestack_signaling::Refusal as SignalingRefusal;
use livestack_tokens::{Access, RequestUrl, VerifyOptions};

use crate::{answer::Refusal, config::Config};

/// Verifies `token` for a play request of `url` (absolute, token parameter
/// already removed): signature, `exp`/`nbf`/`iat` with the default skew,
/// issuer and audience if configured, the stream of the `/live/NAME/` path
/// and the CAT `catu` restriction, play access.
///
/// Single-use CAT tokens (`catreplay`) are not tracked: a standard WASI
/// host offers no shared store, and a playlist and its parts legitimately
/// present the same token many times.
///
/// # Errors
///
/// [`Refusal::Token`], answered with [`livestack_tokens::TokenError::status`]
/// like on the native edge: 400 for a URL the token crate refuses to match
/// (dot segments, encoded `/`), 401 or 403 for a refused token.
pub fn verify_play(config: &Config, token: &str, url: &str) -> Result<(), Refusal> {
    let url =
        RequestUrl::parse(url).map_err(|e| Refusal::Token(SignalingRefusal::InvalidToken(e)))?;
    let mut options = VerifyOptions::new(now_unix_s());
    options.issuer = config.issuer.clone();
    options.audience = config.audience.clone();
    options.url = Some(url);
    options.access = Some(Access::Play);
    livestack_tokens::verify(token, &config.keys, &options)
        .map(|_| ())
        .map_err(|e| Refusal::Token(SignalingRefusal::InvalidToken(e)))
}

/// Wall-clock time (`wasi:clocks/wall-clock`), Unix seconds; 0 if the
/// host's clock is before 1970 (then every token is refused as not yet
/// valid, which is the safe side).
pub fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh session id: 16 bytes from `wasi:random/random` (a CSPRNG),
/// hex-encoded (32 characters).
pub fn session_id() -> String {
    let mut bytes = [0u8; 16];
    wstd::rand::get_random_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
