//! Replay handling (CTA-5007 `catreplay`), as a pure description of what the
//! caller must do with its key-value store.
//!
//! ```
//! # use livestack_tokens::{ReplayCheck, ReplayOutcome, TokenError};
//! # use std::collections::HashSet;
//! # fn run(check: &ReplayCheck, seen: &mut HashSet<String>) -> Result<ReplayOutcome, TokenError> {
//! // With Redis: SET key 1 NX EX ttl_secs; "OK" means newly recorded.
//! let newly_recorded = match check.record() {
//!     Some((key, _ttl_secs)) => seen.insert(key.to_owned()),
//!     None => true,
//! };
//! check.outcome(newly_recorded)
//! # }
//! ```

use base64::Engine as _;

use crate::{Claims, ReplayPolicy, TokenError, TokenKind};

/// Prefix of the store keys [`ReplayCheck`] asks for.
pub const REPLAY_KEY_PREFIX: &str = "livestack:replay:";

/// What the caller must do before serving a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayCheck {
    /// Nothing: the token may be reused (`catreplay` absent or 0, and JWTs).
    None,
    /// `catreplay` 1: set `key` if absent with a TTL of `ttl_secs`; if it
    /// was already present, refuse the request ([`TokenError::Replayed`]).
    RejectReuse {
        /// Store key (namespaced, contains the base64url token id).
        key: String,
        /// Seconds until the token can no longer verify (its remaining
        /// lifetime plus the allowed skew): the record can expire then.
        ttl_secs: u64,
    },
    /// `catreplay` 2: set `key` if absent with a TTL of `ttl_secs`; if it
    /// was already present, serve but report the reuse.
    DetectReuse {
        /// Store key (namespaced, contains the base64url token id).
        key: String,
        /// Seconds until the token can no longer verify.
        ttl_secs: u64,
    },
}

/// The result of a [`ReplayCheck`] once the store answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// No replay policy: nothing was recorded.
    NotTracked,
    /// First use of the token.
    FirstUse,
    /// The token was used before and its policy allows that, but asks for
    /// detection: log and count it.
    ReuseDetected,
}

impl ReplayCheck {
    /// The check for verified claims at time `now` (Unix seconds) with the
    /// verifier's skew (seconds). A policy other than "permitted" without a
    /// token id cannot be enforced and is [`TokenError::Malformed`].
    pub fn new(
        kind: TokenKind,
        claims: &Claims,
        now: u64,
        skew: u64,
    ) -> Result<ReplayCheck, TokenError> {
        let policy = claims.replay_policy();
        if policy == ReplayPolicy::Permitted {
            return Ok(ReplayCheck::None);
        }
        let id = claims
            .id
            .as_ref()
            .ok_or(TokenError::Malformed("catreplay without cti"))?;
        let key = format!(
            "{REPLAY_KEY_PREFIX}{}:{}",
            kind.as_str(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
        );
        let ttl_secs = claims
            .exp
            .map_or(1, |exp| exp.saturating_add(skew).saturating_sub(now).max(1));
        Ok(match policy {
            ReplayPolicy::Prohibited => ReplayCheck::RejectReuse { key, ttl_secs },
            _ => ReplayCheck::DetectReuse { key, ttl_secs },
        })
    }

    /// The store key and TTL (seconds) to set-if-absent, if any.
    pub fn record(&self) -> Option<(&str, u64)> {
        match self {
            ReplayCheck::None => None,
            ReplayCheck::RejectReuse { key, ttl_secs }
            | ReplayCheck::DetectReuse { key, ttl_secs } => Some((key, *ttl_secs)),
        }
    }

    /// Decide once the store answered: `newly_recorded` is whether the
    /// set-if-absent created the key (ignored for [`ReplayCheck::None`]).
    pub fn outcome(&self, newly_recorded: bool) -> Result<ReplayOutcome, TokenError> {
        match (self, newly_recorded) {
            (ReplayCheck::None, _) => Ok(ReplayOutcome::NotTracked),
            (_, true) => Ok(ReplayOutcome::FirstUse),
            (ReplayCheck::RejectReuse { .. }, false) => Err(TokenError::Replayed),
            (ReplayCheck::DetectReuse { .. }, false) => Ok(ReplayOutcome::ReuseDetected),
        }
    }
}
