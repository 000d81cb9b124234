//! Authorization: a pure decision over the keys that apply to a stream.

use crate::{ControlError, StreamKey, UnixMillis};

/// What a client wants to do with a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Publish (ingest).
    Publish,
    /// Play (subscribe).
    Play,
}

impl Action {
    /// `"publish"` or `"play"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// What an authorized client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The id of the key that opened the stream.
    pub key_id: String,
    /// For an encrypted SRT caller (no in-band credential), the passphrase
    /// the handshake must use: the key's secret. The handshake then proves
    /// the caller knows it.
    pub passphrase: Option<String>,
}

/// Decides whether `credential` (or, for an `encrypted` SRT caller without
/// one, knowledge of a key's secret as passphrase) allows `action` on
/// `stream`, given `keys` (those that apply to the stream, as
/// [`ControlPlane::keys_for_stream`](crate::ControlPlane::keys_for_stream)
/// returns them) at time `now`.
///
/// Stream-specific keys are preferred to `"*"` keys for the passphrase.
///
/// # Errors
/// [`ControlError::Unauthorized`] when no credential is presented (and the
/// caller is not encrypted); [`ControlError::Forbidden`] when no key for
/// this stream, scope and time matches.
pub fn authorize(
    action: Action,
    stream: &str,
    credential: Option<&str>,
    encrypted: bool,
    keys: &[StreamKey],
    now: UnixMillis,
) -> Result<Grant, ControlError> {
    let mut usable: Vec<&StreamKey> = keys
        .iter()
        .filter(|k| k.matches(stream) && !k.expired(now) && k.scope.allows(action))
        .collect();
    // Own keys first, then wildcard keys; stable by id.
    usable.sort_by(|a, b| (a.stream == "*", &a.id).cmp(&(b.stream == "*", &b.id)));
    let forbidden = || ControlError::Forbidden {
        action: action.as_str(),
        stream: stream.to_owned(),
    };
    if let Some(secret) = credential {
        // Compare against every key so that timing does not reveal which
        // one matched.
        let mut found = None;
        for k in &usable {
            if ct_eq(&k.secret, secret) && found.is_none() {
                found = Some(*k);
            }
        }
        return found
            .map(|k| Grant {
                key_id: k.id.clone(),
                passphrase: None,
            })
            .ok_or_else(forbidden);
    }
    if encrypted {
        return usable
            .first()
            .map(|k| Grant {
                key_id: k.id.clone(),
                passphrase: Some(k.secret.clone()),
            })
            .ok_or_else(forbidden);
    }
    Err(ControlError::Unauthorized {
        action: action.as_str(),
        stream: stream.to_owned(),
    })
}

/// Constant-time comparison of two secrets (the length is not hidden).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;

    fn key(id: &str, stream: &str, secret: &str, scope: Scope, expires: Option<u64>) -> StreamKey {
        StreamKey {
            id: id.into(),
            stream: stream.into(),
            secret: secret.into(),
            scope,
            expires_at: expires,
            created_at: 0,
        }
    }

    #[test]
    fn decisions() {
        let keys = [
            key("a1", "a", "secret-a", Scope::Publish, None),
            key("all", "*", "master", Scope::Both, None),
            key("old", "a", "expired-one", Scope::Both, Some(100)),
            key("viewer", "a", "view-only", Scope::Play, None),
        ];
        let p = Action::Publish;
        assert_eq!(
            authorize(p, "a", Some("secret-a"), false, &keys, 50)
                .unwrap()
                .key_id,
            "a1"
        );
        assert!(authorize(p, "b", Some("secret-a"), false, &keys, 50).is_err());
        assert_eq!(
            authorize(p, "b", Some("master"), false, &keys, 50)
                .unwrap()
                .key_id,
            "all"
        );
        assert!(authorize(p, "a", Some("expired-one"), false, &keys, 50).is_ok());
        assert!(matches!(
            authorize(p, "a", Some("expired-one"), false, &keys, 100),
            Err(ControlError::Forbidden { .. })
        ));
        assert!(authorize(p, "a", Some("view-only"), false, &keys, 0).is_err());
        assert!(authorize(Action::Play, "a", Some("view-only"), false, &keys, 0).is_ok());
        assert!(matches!(
            authorize(p, "a", None, false, &keys, 0),
            Err(ControlError::Unauthorized { .. })
        ));
        // Encrypted caller: the stream's own key is the passphrase.
        assert_eq!(
            authorize(p, "a", None, true, &keys, 0)
                .unwrap()
                .passphrase
                .as_deref(),
            Some("secret-a")
        );
        assert_eq!(
            authorize(p, "z", None, true, &keys, 0)
                .unwrap()
                .passphrase
                .as_deref(),
            Some("master")
        );
        assert!(authorize(p, "z", None, true, &[], 0).is_err());
    }
}
