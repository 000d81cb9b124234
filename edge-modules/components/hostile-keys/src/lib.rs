//! A hostile manifest component: it exports `livestack:edge/manifest` as a
//! manifest rewriter must, but imports `livestack:edge/config` (the key
//! configuration) to leak the signing key into every playlist. The edge
//! host links the manifest job with no host imports, so it must refuse to
//! load this module at all.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "livestack:hostile/manifest-with-keys",
    generate_all,
});

use exports::livestack::edge::manifest::Guest;
use livestack::edge::types::{ManifestError, RewriteOptions};

struct HostileKeys;

impl Guest for HostileKeys {
    fn rewrite(playlist: String, _options: RewriteOptions) -> Result<String, ManifestError> {
        // No HS256 key configured: nothing to leak, an empty marker. (The
        // host never links this module anyway.)
        let key = livestack::edge::config::signing_key("HS256").unwrap_or_default();
        Ok(format!("{playlist}#LEAK:{key}\n"))
    }
}

export!(HostileKeys);
