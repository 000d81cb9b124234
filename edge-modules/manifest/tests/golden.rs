//! Golden input/output pairs in `tests/data`: the expected files were
//! written by hand-checked text edits of the inputs, not by this crate.

use livestack_manifest::{BaseRewrite, RewriteOptions, rewrite, rewrite_into};

fn token() -> RewriteOptions {
    RewriteOptions {
        token_query: Some("token=abc".into()),
        ..RewriteOptions::default()
    }
}

fn origin_base() -> Option<BaseRewrite> {
    Some(BaseRewrite {
        from: "http://origin:8080/live/".into(),
        to: "https://edge.example/live/".into(),
    })
}

#[track_caller]
fn assert_golden(input: &str, opts: &RewriteOptions, want: &str) {
    let got = rewrite(input, opts).expect("rewrite");
    if got != want {
        for (i, (g, w)) in got.split('\n').zip(want.split('\n')).enumerate() {
            assert_eq!(g, w, "first difference at line {}", i + 1);
        }
        assert_eq!(got, want);
    }
}

#[test]
fn ll_hls_media_playlist_with_parts_hints_reports_skip_map_keys() {
    assert_golden(
        include_str!("data/ll-hls-media.m3u8"),
        &token(),
        include_str!("data/ll-hls-media.token.m3u8"),
    );
}

#[test]
fn crlf_and_mixed_line_endings_queries_fragments() {
    let input = include_str!("data/crlf-media.m3u8");
    assert!(input.contains("\r\n") && input.contains(",\n/abs"));
    assert_golden(input, &token(), include_str!("data/crlf-media.token.m3u8"));
}

#[test]
fn multivariant_token_only_leaves_absolute_uris_alone() {
    assert_golden(
        include_str!("data/multivariant.m3u8"),
        &token(),
        include_str!("data/multivariant.token.m3u8"),
    );
}

#[test]
fn multivariant_base_rewrite_and_filters() {
    let opts = RewriteOptions {
        base: origin_base(),
        max_height: Some(1080),
        allowed_codecs: vec!["avc1".into(), "mp4a".into()],
        ..token()
    };
    assert_golden(
        include_str!("data/multivariant.m3u8"),
        &opts,
        include_str!("data/multivariant.filtered.m3u8"),
    );
}

#[test]
fn base_rewrite_without_token() {
    let input = "#EXTM3U\n\
        #EXT-X-MAP:URI=\"http://origin:8080/live/a/init.mp4\"\n\
        #EXTINF:4,\n\
        http://origin:8080/live/a/seg1.m4s?x=1\n\
        #EXTINF:4,\n\
        http://origin:8080/liveX/seg2.m4s\n\
        #EXTINF:4,\n\
        seg3.m4s\n";
    let opts = RewriteOptions {
        base: origin_base(),
        ..RewriteOptions::default()
    };
    assert_eq!(
        rewrite(input, &opts).unwrap(),
        "#EXTM3U\n\
        #EXT-X-MAP:URI=\"https://edge.example/live/a/init.mp4\"\n\
        #EXTINF:4,\n\
        https://edge.example/live/a/seg1.m4s?x=1\n\
        #EXTINF:4,\n\
        http://origin:8080/liveX/seg2.m4s\n\
        #EXTINF:4,\n\
        seg3.m4s\n"
    );
}

#[test]
fn foreign_uris_get_the_token_only_when_asked() {
    let input = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k\"\n#EXTINF:4,\n//cdn.example/s.m4s\n";
    assert_eq!(rewrite(input, &token()).unwrap(), input);
    let opts = RewriteOptions {
        token_foreign_uris: true,
        ..token()
    };
    assert_eq!(
        rewrite(input, &opts).unwrap(),
        "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k?token=abc\"\n#EXTINF:4,\n//cdn.example/s.m4s?token=abc\n"
    );
}

#[test]
fn bom_and_default_options_copy_verbatim() {
    let input = "\u{feff}#EXTM3U \r\n#EXT-X-TARGETDURATION:4\r\n#EXTINF:4,\r\nseg.m4s\r\n";
    assert_eq!(rewrite(input, &RewriteOptions::default()).unwrap(), input);
    assert_eq!(
        rewrite(input, &token()).unwrap(),
        "\u{feff}#EXTM3U \r\n#EXT-X-TARGETDURATION:4\r\n#EXTINF:4,\r\nseg.m4s?token=abc\r\n"
    );
}

#[test]
fn rewrite_into_appends_and_matches_rewrite() {
    let input = include_str!("data/ll-hls-media.m3u8");
    let mut buf = String::from("prefix|");
    rewrite_into(input, &token(), &mut buf).unwrap();
    assert_eq!(buf, format!("prefix|{}", rewrite(input, &token()).unwrap()));
    buf.clear();
    rewrite_into(input, &token(), &mut buf).unwrap();
    assert_eq!(buf, include_str!("data/ll-hls-media.token.m3u8"));
}

#[test]
fn only_the_named_attribute_is_a_uri() {
    let input = "#EXTM3U\n\
        #EXT-X-MAP:X-URI=\"a.mp4\",URI=\"b.mp4\",Y=\"c,URI=d\"\n\
        #EXT-X-CONTENT-STEERING:URI=\"x.json\",SERVER-URI=\"s.json\"\n\
        #EXT-X-PART:DURATION=0.2,URI=unquoted.m4s\n";
    assert_eq!(
        rewrite(input, &token()).unwrap(),
        "#EXTM3U\n\
        #EXT-X-MAP:X-URI=\"a.mp4\",URI=\"b.mp4?token=abc\",Y=\"c,URI=d\"\n\
        #EXT-X-CONTENT-STEERING:URI=\"x.json\",SERVER-URI=\"s.json?token=abc\"\n\
        #EXT-X-PART:DURATION=0.2,URI=unquoted.m4s\n"
    );
}
