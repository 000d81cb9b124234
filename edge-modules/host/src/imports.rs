//! What the host gives components: configuration, keys, the registry view
//! and the key-value store (`livestack:edge/{config,registry,kv}`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::OriginNode;
use crate::bindings::livestack::edge::{config, kv, registry, types};
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
/// separated by `,`; see `livestack_tokens::keys`). The host hands
/// components one entry at a time: by key id (`config.key`) or the signing
/// key of an algorithm (`config.signing-key`: the first private or secret
/// key listed for it, as `KeySet` rotation rules say).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// kid → the entry text.
    entries: HashMap<String, String>,
    /// JOSE algorithm name → kid of its signing key.
    signing: HashMap<&'static str, String>,
}

impl Keys {
    /// Parses and validates a key-configuration string (empty: no keys).
    ///
    /// # Errors
    ///
    /// `TokenError::KeyError` for an invalid entry or a duplicate `kid`.
    pub fn parse(config: &str) -> Result<Self, livestack_tokens::TokenError> {
        let set = livestack_tokens::KeySet::parse(config)?;
        let mut entries = HashMap::new();
        for entry in config.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let key = livestack_tokens::Key::parse(entry)?;
            entries.insert(key.kid().to_owned(), entry.to_owned());
        }
        let signing = [
            livestack_tokens::Alg::Hs256,
            livestack_tokens::Alg::Es256,
            livestack_tokens::Alg::EdDsa,
        ]
        .into_iter()
        .filter_map(|alg| Some((alg.jose_name(), set.signing_key(alg)?.kid().to_owned())))
        .collect();
        Ok(Self { entries, signing })
    }

    /// The entry for `kid`.
    fn entry(&self, kid: &str) -> Option<String> {
        self.entries.get(kid).cloned()
    }

    /// The entry of the signing key for `alg` (JOSE name).
    fn signing_entry(&self, alg: &str) -> Option<String> {
        self.signing.get(alg).and_then(|kid| self.entry(kid))
    }
}

impl fmt::Debug for Keys {
    // Secrets stay out of logs: only key ids are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        kids.sort_unstable();
        f.debug_struct("Keys")
            .field("kids", &kids)
            .field("signing", &self.signing)
            .finish()
    }
}

/// Everything the host imports give components, except the key-value store
/// (internal to [`Components`](crate::Components), shared by all calls).
#[derive(Clone)]
pub struct HostImports {
    /// Configuration values for `livestack:edge/config.get`
    /// (`"tokens.issuer"`, ...). See each component for the keys it reads.
    pub config: HashMap<String, String>,
    /// Token keys for `livestack:edge/config.{key,signing-key}`.
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

    fn key(&mut self, kid: String) -> Option<String> {
        self.imports.keys.entry(&kid)
    }

    fn signing_key(&mut self, alg: String) -> Option<String> {
        self.imports.keys.signing_entry(&alg)
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
