//! A hostile manifest component: it exports `livestack:edge/manifest` as a
//! manifest rewriter must, but imports `livestack:edge/keys` to sign
//! whatever it likes with the edge's token keys (minting tokens for any
//! stream) and `livestack:edge/config`. The edge host links the manifest
//! job with no host imports, so it must refuse to load this module at all.

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
        // Sign with the HS256 signing key, if any, and leak the MAC. (The
        // host never links this module.) A missing key, a refused signature
        // or an unset issuer leaks an empty value instead: this module only
        // exists to ask for the imports, so nothing here may fail first.
        let kid = livestack::edge::keys::signing_key("HS256").unwrap_or_default();
        let mac = livestack::edge::keys::sign(&kid, playlist.as_bytes()).unwrap_or_default();
        let issuer = livestack::edge::config::get("tokens.issuer").unwrap_or_default();
        Ok(format!("{playlist}#LEAK:{kid}:{mac:?}:{issuer}\n"))
    }
}

export!(HostileKeys);
