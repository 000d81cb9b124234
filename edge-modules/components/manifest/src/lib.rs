//! The manifest edge component: `livestack:edge/manifest` over
//! `livestack-manifest` (RFC 8216bis playlist rewriting).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "manifest-component",
});

use exports::livestack::edge::manifest::Guest;
use livestack::edge::types::{
    BaseRewrite, Malformation, ManifestError, RewriteOptions, Truncation,
};
use livestack_manifest as pure;

struct Manifest;

impl Guest for Manifest {
    fn rewrite(playlist: String, options: RewriteOptions) -> Result<String, ManifestError> {
        pure::rewrite(&playlist, &options_from_wit(options)).map_err(error_to_wit)
    }
}

fn options_from_wit(o: RewriteOptions) -> pure::RewriteOptions {
    pure::RewriteOptions {
        token_query: o.token_query,
        token_foreign_uris: o.token_foreign_uris,
        base: o
            .base
            .map(|BaseRewrite { from, to }| pure::BaseRewrite { from, to }),
        max_bandwidth: o.max_bandwidth,
        max_height: o.max_height,
        allowed_codecs: o.allowed_codecs,
        max_input_bytes: o
            .max_input_bytes
            .map_or(pure::DEFAULT_MAX_INPUT_BYTES, |max| {
                usize::try_from(max).unwrap_or(usize::MAX)
            }),
    }
}

fn error_to_wit(e: pure::ManifestError) -> ManifestError {
    let line = |l: usize| u32::try_from(l).unwrap_or(u32::MAX);
    match e {
        pure::ManifestError::NotAPlaylist => ManifestError::NotAPlaylist,
        pure::ManifestError::TooLarge { len, max } => {
            ManifestError::TooLarge((len as u64, max as u64))
        }
        pure::ManifestError::Truncated { line: l, reason } => {
            let reason = match reason {
                pure::Truncation::MissingLineTerminator => Truncation::MissingLineTerminator,
                pure::Truncation::UnterminatedQuote => Truncation::UnterminatedQuote,
                pure::Truncation::MissingVariantUri => Truncation::MissingVariantUri,
                other => return ManifestError::Other(e_text(&other)),
            };
            ManifestError::Truncated((line(l), reason))
        }
        pure::ManifestError::Malformed { line: l, reason } => {
            let reason = match reason {
                pure::Malformation::ControlCharacter => Malformation::ControlCharacter,
                pure::Malformation::InvalidAttribute(_) => Malformation::InvalidAttribute,
                pure::Malformation::VariantWithoutUri => Malformation::VariantWithoutUri,
                other => return ManifestError::Other(e_text(&other)),
            };
            ManifestError::Malformed((line(l), reason))
        }
        pure::ManifestError::InvalidOptions(rule) => ManifestError::InvalidOptions(rule.to_owned()),
        other => ManifestError::Other(e_text(&other)),
    }
}

fn e_text(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

export!(Manifest);
