//! Playlist rewriting through the manifest component: the golden files of
//! `livestack-manifest`, its refusals, and byte equality with the native
//! crate on every test playlist and option set.

mod common;

use livestack_edge::{BaseRewrite, Malformation, ManifestError, RewriteOptions, Truncation};
use livestack_manifest as native;

macro_rules! data {
    ($name:literal) => {
        include_str!(concat!("../../manifest/tests/data/", $name))
    };
}

const INPUTS: [&str; 5] = [
    data!("ll-hls-media.m3u8"),
    data!("crlf-media.m3u8"),
    data!("multivariant.m3u8"),
    data!("bench-media.m3u8"),
    "\u{feff}#EXTM3U \r\n#EXT-X-TARGETDURATION:4\r\n#EXTINF:4,\r\nseg.m4s\r\n",
];

fn plain() -> RewriteOptions {
    RewriteOptions {
        token_query: None,
        token_foreign_uris: false,
        base: None,
        max_bandwidth: None,
        max_height: None,
        allowed_codecs: Vec::new(),
        max_input_bytes: None,
    }
}

fn token() -> RewriteOptions {
    RewriteOptions {
        token_query: Some("token=abc".into()),
        ..plain()
    }
}

fn filtered() -> RewriteOptions {
    RewriteOptions {
        base: Some(BaseRewrite {
            from: "http://origin:8080/live/".into(),
            to: "https://edge.example/live/".into(),
        }),
        max_bandwidth: Some(6_000_000),
        max_height: Some(1080),
        allowed_codecs: vec!["avc1".into(), "mp4a".into()],
        ..token()
    }
}

/// The same options for the native crate.
fn native_opts(o: &RewriteOptions) -> native::RewriteOptions {
    native::RewriteOptions {
        token_query: o.token_query.clone(),
        token_foreign_uris: o.token_foreign_uris,
        base: o.base.as_ref().map(|b| native::BaseRewrite {
            from: b.from.clone(),
            to: b.to.clone(),
        }),
        max_bandwidth: o.max_bandwidth,
        max_height: o.max_height,
        allowed_codecs: o.allowed_codecs.clone(),
        max_input_bytes: o
            .max_input_bytes
            .map_or(native::DEFAULT_MAX_INPUT_BYTES, |m| m as usize),
    }
}

fn rewrite(input: &str, opts: &RewriteOptions) -> Result<String, ManifestError> {
    common::shared()
        .rewrite_manifest(input, opts)
        .expect("component call")
}

#[test]
fn golden_ll_hls_media_playlist() {
    assert_eq!(
        rewrite(data!("ll-hls-media.m3u8"), &token()).unwrap(),
        data!("ll-hls-media.token.m3u8")
    );
}

#[test]
fn golden_crlf_media_playlist() {
    assert_eq!(
        rewrite(data!("crlf-media.m3u8"), &token()).unwrap(),
        data!("crlf-media.token.m3u8")
    );
}

#[test]
fn golden_multivariant_token_and_filtered() {
    assert_eq!(
        rewrite(data!("multivariant.m3u8"), &token()).unwrap(),
        data!("multivariant.token.m3u8")
    );
    assert_eq!(
        rewrite(data!("multivariant.m3u8"), &filtered()).unwrap(),
        data!("multivariant.filtered.m3u8")
    );
}

#[test]
fn identical_to_the_native_crate() {
    let foreign = RewriteOptions {
        token_foreign_uris: true,
        ..token()
    };
    for opts in [plain(), token(), filtered(), foreign] {
        for input in INPUTS {
            let native = native::rewrite(input, &native_opts(&opts)).expect("native rewrite");
            assert_eq!(rewrite(input, &opts).unwrap(), native, "options {opts:?}");
        }
    }
}

#[test]
fn refusals_cross_the_boundary_typed() {
    assert_eq!(
        rewrite("hello\n", &token()),
        Err(ManifestError::NotAPlaylist)
    );
    assert_eq!(
        rewrite("#EXTM3U\n#EXTINF:4,\nseg", &token()),
        Err(ManifestError::Truncated((
            3,
            Truncation::MissingLineTerminator
        )))
    );
    assert_eq!(
        rewrite(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\na.m3u8\n",
            &filtered()
        ),
        Err(ManifestError::Malformed((
            3,
            Malformation::VariantWithoutUri
        )))
    );
    let small = RewriteOptions {
        max_input_bytes: Some(16),
        ..token()
    };
    assert_eq!(
        rewrite("#EXTM3U\n#EXTINF:4,\nseg.m4s\n", &small),
        Err(ManifestError::TooLarge((27, 16)))
    );
    let bad = RewriteOptions {
        token_query: Some("a b".into()),
        ..plain()
    };
    assert!(matches!(
        rewrite("#EXTM3U\n", &bad),
        Err(ManifestError::InvalidOptions(_))
    ));
}
