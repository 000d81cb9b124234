//! The control plane as the origin uses it: the `livestack-control` crate
//! (trait, in-memory and Redis implementations, caching client) and the
//! mapping of the configuration's stream keys into it.

pub use livestack_control::*;

use crate::config::StreamKeyConfig;

/// The id prefix of keys that come from the configuration file: the
/// origin owns every key under it ([`crate::cluster::Node::seed_keys`]
/// revokes those the configuration no longer has).
pub const CONFIG_KEY_PREFIX: &str = "config-";

/// The configuration file's stream keys as control-plane keys, with
/// stable ids `config-<stream>-<index>` (`*` spelled `all`), scope
/// publish and no expiry. The origin writes them at start and after every
/// control-plane outage, so that every node of a deployment shares them
/// and a changed or removed key takes effect at the next start.
pub fn config_keys(keys: &[StreamKeyConfig]) -> Vec<StreamKey> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| StreamKey {
            id: format!(
                "{CONFIG_KEY_PREFIX}{}-{i}",
                if k.stream == "*" { "all" } else { &k.stream }
            ),
            stream: k.stream.clone(),
            secret: k.key.clone(),
            scope: Scope::Publish,
            expires_at: None,
            created_at: now_millis(),
        })
        .collect()
}
