//! A hostile manifest component: `rewrite` allocates without bound.
//!
//! The edge host must stop it at its memory limit and keep serving.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "manifest-component",
});

use exports::livestack::edge::manifest::Guest;
use livestack::edge::types::{ManifestError, RewriteOptions};

struct HostileAlloc;

impl Guest for HostileAlloc {
    fn rewrite(playlist: String, _options: RewriteOptions) -> Result<String, ManifestError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // 1 MiB at a time, touched so the pages are really used.
            let mut chunk = vec![0u8; 1 << 20];
            chunk[0] = playlist.len() as u8;
            hoard.push(std::hint::black_box(chunk));
            if hoard.len() == usize::MAX {
                return Ok(String::new());
            }
        }
    }
}

export!(HostileAlloc);
