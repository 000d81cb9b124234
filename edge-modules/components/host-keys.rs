//! The host's token keys as a `livestack_tokens::KeyStore`, shared by the
//! components whose world imports `livestack:edge/keys` (tokens,
//! signaling): `#[path = "../../host-keys.rs"] mod host_keys;` next to the
//! component's `wit_bindgen::generate!`.
//!
//! The key material stays on the host: `describe`, `signing-key`, `sign`
//! and `verify` go through the import by key id.

use livestack_tokens::{Alg, KeyInfo, KeyStore, TokenError};

use crate::livestack::edge::keys;

/// The keys the host configured, used by handle.
pub struct HostKeys;

impl KeyStore for HostKeys {
    fn key_info(&self, kid: &str) -> Option<KeyInfo> {
        let info = keys::describe(kid)?;
        Some(KeyInfo {
            kid: info.kid,
            // A host that names an algorithm this crate does not know has
            // no key usable here.
            alg: Alg::from_jose_name(&info.alg)?,
            can_sign: info.can_sign,
        })
    }

    fn signing_kid(&self, alg: Alg) -> Option<String> {
        keys::signing_key(alg.jose_name())
    }

    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        keys::sign(kid, message).map_err(|e| match e {
            keys::SignError::UnknownKey(kid) => TokenError::UnknownKey(kid),
            keys::SignError::PublicKey(kid) => {
                TokenError::KeyError(format!("key {kid:?} is a public key and cannot sign"))
            }
            keys::SignError::TooLarge(len) => {
                TokenError::KeyError(format!("the host signs at most 16 KiB, not {len} bytes"))
            }
        })
    }

    fn verify(&self, kid: &str, message: &[u8], signature: &[u8]) -> Result<(), TokenError> {
        if keys::verify(kid, message, signature) {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    }
}
