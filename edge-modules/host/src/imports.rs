//! What the host gives components: configuration, keys by handle, the
//! registry view and the key-value store
//! (`livestack:edge/{config,keys,registry,kv}`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::OriginNode;
use livestack_tokens::KeyStore as _;

use crate::bindings::livestack::edge::{config, keys, kv, registry, types};
use crate::state::HostState;

/// A read-only view of the origin registry, as components see it through
/// `livestack:edge/registry`. Implemented by the control-plane client (a
/// cached snapshot: these are called on the request path and must not
/// block on the network) and by [`StaticRegistry`].
pub trait RegistryView: Send + Sync {
    /// Every known node, healthy or not.
    fn nodes(&self) -> Vec<OriginNode>;
    /// The id of the node that holds `stream` (`live/NAME`), if placed.
    fn placement(&self, stream: &str) -> Option<String>;
}

/// A fixed registry: a node list and a placement map.
#[derive(Debug, Clone, Default)]
pub struct StaticRegistry {
    /// The nodes.
    pub nodes: Vec<OriginNode>,
    /// Stream name (`live/NAME`) → node id.
    pub placements: HashMap<String, String>,
}

impl RegistryView for StaticRegistry {
    fn nodes(&self) -> Vec<OriginNode> {
        self.nodes.clone()
    }

    fn placement(&self, stream: &str) -> Option<String> {
        self.placements.get(stream).cloned()
    }
}

/// Token keys for the tokens and signaling components, in the livestack
/// key-configuration format (`kid:ALG[:KIND]:base64url(material)`, entries
/// separated by `,`; see `livestack_tokens::keys`). Components use them by
/// handle through `livestack:edge/keys`: the host MACs, signs and verifies,
/// and the key bytes never enter a component.
#[derive(Clone, Default)]
pub struct Keys {
    set: Arc<livestack_tokens::KeySet>,
}

/// Longest message `livestack:edge/keys` signs or verifies, bytes: a
/// token's signing input is at most `livestack_tokens::MAX_TOKEN_LEN`
/// (8 KiB), so 16 KiB leaves room and bounds the host's work per call.
pub const MAX_KEYS_MESSAGE_LEN: usize = 16 * 1024;

impl Keys {
    /// Parses and validates a key-configuration string (empty: no keys).
    ///
    /// # Errors
    ///
    /// `TokenError::KeyError` for an invalid entry or a duplicate `kid`.
    pub fn parse(config: &str) -> Result<Self, livestack_tokens::TokenError> {
        Ok(Self {
            set: Arc::new(livestack_tokens::KeySet::parse(config)?),
        })
    }
}

impl fmt::Debug for Keys {
    // Secrets stay out of logs: KeySet's Debug shows key ids and
    // algorithms only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").field("set", &self.set).finish()
    }
}

/// Everything the host imports give components, except the key-value store
/// (internal to [`Components`](crate::Components), shared by all calls).
#[derive(Clone)]
pub struct HostImports {
    /// Configuration values for `livestack:edge/config.get`
    /// (`"tokens.issuer"`, ...). See each component for the keys it reads.
    pub config: HashMap<String, String>,
    /// Token keys for `livestack:edge/keys`.
    pub keys: Keys,
    /// The registry view for `livestack:edge/registry`.
    pub registry: Arc<dyn RegistryView>,
}

impl fmt::Debug for HostImports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostImports")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Default for HostImports {
    fn default() -> Self {
        Self {
            config: HashMap::new(),
            keys: Keys::default(),
            registry: Arc::new(StaticRegistry::default()),
        }
    }
}

impl types::Host for HostState {}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.imports.config.get(&key).cloned()
    }
}

impl keys::Host for HostState {
    fn describe(&mut self, kid: String) -> Option<keys::KeyInfo> {
        let info = self.imports.keys.set.key_info(&kid)?;
        Some(keys::KeyInfo {
            kid: info.kid,
            alg: info.alg.jose_name().to_owned(),
            can_sign: info.can_sign,
        })
    }

    fn signing_key(&mut self, alg: String) -> Option<String> {
        let alg = livestack_tokens::Alg::from_jose_name(&alg)?;
        self.imports.keys.set.signing_kid(alg)
    }

    fn sign(&mut self, kid: String, message: Vec<u8>) -> Result<Vec<u8>, keys::SignError> {
        if message.len() > MAX_KEYS_MESSAGE_LEN {
            return Err(keys::SignError::TooLarge(message.len() as u64));
        }
        let keys = &self.imports.keys.set;
        match keys.key_info(&kid) {
            None => Err(keys::SignError::UnknownKey(kid)),
            Some(info) if !info.can_sign => Err(keys::SignError::PublicKey(kid)),
            // A configured private key or secret always signs.
            Some(_) => keys
                .sign(&kid, &message)
                .map_err(|_| keys::SignError::UnknownKey(kid)),
        }
    }

    fn verify(&mut self, kid: String, message: Vec<u8>, signature: Vec<u8>) -> bool {
        message.len() <= MAX_KEYS_MESSAGE_LEN
            && self
                .imports
                .keys
                .set
                .verify(&kid, &message, &signature)
                .is_ok()
    }
}

impl registry::Host for HostState {
    fn nodes(&mut self) -> Vec<OriginNode> {
        self.imports.registry.nodes()
    }

    fn placement(&mut self, stream: String) -> Option<String> {
        self.imports.registry.placement(&stream)
    }
}

impl kv::Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.kv.get(&key, Instant::now())
    }

    fn set_if_absent(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<bool, types::KvError> {
        self.kv
            .set_if_absent(key, value, Duration::from_millis(ttl_ms), Instant::now())
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) -> Result<(), types::KvError> {
        self.kv
            .set(key, value, Duration::from_millis(ttl_ms), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Kv;
    use keys::Host as _;

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
    // RFC 8037 A.2 Ed25519 public key: verifies, cannot sign.
    const ED_PUBLIC: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn state() -> HostState {
        let imports = HostImports {
            keys: Keys::parse(&format!("h1:HS256:{SECRET},d1:EdDSA:public:{ED_PUBLIC}")).unwrap(),
            ..HostImports::default()
        };
        HostState::new(
            Arc::new(imports),
            Arc::new(Kv::new(4, 64, 64)),
            1 << 20,
            100,
        )
    }

    /// Components get key ids, algorithms and MACs, never the key bytes;
    /// the host refuses to sign with a public key, with an unknown key id
    /// or a message above the bound.
    #[test]
    fn keys_are_used_by_handle() {
        let mut host = state();
        let info = host.describe("h1".into()).unwrap();
        assert_eq!((info.alg.as_str(), info.can_sign), ("HS256", true));
        assert!(!host.describe("d1".into()).unwrap().can_sign);
        assert!(host.describe("nope".into()).is_none());
        assert_eq!(host.signing_key("HS256".into()).as_deref(), Some("h1"));
        assert_eq!(host.signing_key("EdDSA".into()), None);
        assert_eq!(host.signing_key("none".into()), None);

        let mac = host.sign("h1".into(), b"message".to_vec()).unwrap();
        assert_eq!(mac.len(), 32);
        assert!(
            !mac.windows(8)
                .any(|w| SECRET.as_bytes().windows(8).any(|s| s == w))
        );
        assert!(host.verify("h1".into(), b"message".to_vec(), mac.clone()));
        assert!(!host.verify("h1".into(), b"messagf".to_vec(), mac.clone()));
        assert!(!host.verify("nope".into(), b"message".to_vec(), mac));

        assert!(matches!(
            host.sign("d1".into(), b"m".to_vec()),
            Err(keys::SignError::PublicKey(kid)) if kid == "d1"
        ));
        assert!(matches!(
            host.sign("nope".into(), b"m".to_vec()),
            Err(keys::SignError::UnknownKey(_))
        ));
        let big = vec![0u8; MAX_KEYS_MESSAGE_LEN + 1];
        assert!(matches!(
            host.sign("h1".into(), big.clone()),
            Err(keys::SignError::TooLarge(n)) if n == big.len() as u64
        ));
        let mac = host.sign("h1".into(), big[1..].to_vec()).unwrap();
        assert!(!host.verify("h1".into(), big, mac));
    }
}
