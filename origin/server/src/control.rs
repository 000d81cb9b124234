//! The control plane as the origin uses it: the `livestack-control` crate
//! (trait, in-memory and Redis implementations, caching client) and the
//! mapping of the configuration's stream keys into it.

pub use livestack_control::*;

use crate::config::StreamKeyConfig;

/// The configuration file's stream keys as control-plane keys, with
/// stable ids `config-<stream>-<index>` (`*` spelled `all`), scope
/// publish and no expiry. The origin seeds them at start (existing ids are
/// kept), so that every node of a deployment shares them.
pub fn config_keys(keys: &[StreamKeyConfig]) -> Vec<StreamKey> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| StreamKey {
            id: format!(
                "config-{}-{i}",
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
