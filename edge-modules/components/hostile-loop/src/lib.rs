//! A hostile manifest component: `rewrite` never returns.
//!
//! The edge host must cut it off at its epoch deadline and keep serving.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "manifest-component",
});

use exports::livestack::edge::manifest::Guest;
use livestack::edge::types::{ManifestError, RewriteOptions};

struct HostileLoop;

impl Guest for HostileLoop {
    fn rewrite(playlist: String, _options: RewriteOptions) -> Result<String, ManifestError> {
        // Spin on something the optimiser cannot prove constant, so the loop
        // survives `opt-level = "s"` and LTO.
        let mut acc = playlist.len() as u64;
        loop {
            acc = std::hint::black_box(acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

export!(HostileLoop);
